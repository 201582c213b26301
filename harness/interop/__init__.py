"""Other tools' logs in and out (lm-eval, inspect_ai, plain JSONL): these modules read and write files and may
import requests/ (the response store), analysis/ and the ground, never a stage."""
