"""scaling-harness: accuracy against tokens spent at inference, for any OpenAI-compatible model.

The floors, top to bottom (tests/test_layers.py holds them): cli and the commands that are not stages
(estimate, preflight, summary, compare); stages/ (one module per DVC stage); report/; requests/ and
servers/; analysis/ (pure); and the ground every floor stands on: params, files, data, budget_axis, redact.
"""
