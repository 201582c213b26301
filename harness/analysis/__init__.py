"""Pure computation, no I/O: grading, maj@k pools, intervals, the law, frontier, crossover, stopping rules,
confidence votes, paired differences, pricing and the reading of thinking text; it imports only itself and
the ground modules (budget_axis, files for number formatting and paths, params for types)."""
