"""One module per DVC stage (fetch, calibrate, sample, vote, plot, report), each a `run(params)` that reads
its inputs from files and writes its outputs; a stage may import requests/, analysis/, report/, servers/ and
the ground modules (params, files, data, budget_axis, redact), never the commands above it (cli, estimate,
preflight, summary, compare)."""
