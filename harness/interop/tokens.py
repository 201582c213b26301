"""Token counts for logs that kept none (lm-eval's): the model's own tokenizer when one is given, else an estimate.

Why an estimate at all: the x-axis of a scaling curve is tokens, and lm-eval logs only text. A rough count is
still a usable axis if every row says it is rough (samples.csv `tokens_counted`, imported.json).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from .rundir import COUNT_ESTIMATED, InteropError

# English prose and arithmetic run about 4 UTF-8 bytes per token in BPE vocabularies of 32k-150k entries.
BYTES_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """About how many tokens `text` is: its UTF-8 bytes / 4, rounded up (never 0 for a non-empty text)."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def gguf_counter(path: Path) -> Callable[[str], int]:
    """Count with the vocabulary of a GGUF model file (llama-cpp-python, the vocabulary alone is loaded)."""
    if not path.is_file():
        raise InteropError(f"--tokenizer {path}: no such file; give the model's .gguf file")
    try:
        from llama_cpp import Llama
    except ImportError:
        raise InteropError("--tokenizer needs llama-cpp-python (`nox -s tests --install-only` builds it); "
                           "leave --tokenizer out to estimate the tokens instead") from None
    vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
    return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def counter(tokenizer: Path | None) -> tuple[Callable[[str], int], str]:
    """The count to use and how samples.csv names it: `tokenizer:<file>` or `estimated`."""
    if tokenizer is None:
        return estimate_tokens, COUNT_ESTIMATED
    return gguf_counter(tokenizer), f"tokenizer:{tokenizer.name}"
