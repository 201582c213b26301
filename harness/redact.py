"""The API key must never reach a file or a terminal, even when a provider sends it back.

Why a registry: the key enters the process in one place (the environment variable named by
`model.api_key_env`), but a provider can echo it anywhere: in an error message (OpenAI's 401 quotes part
of it, a misconfigured proxy may quote all of it), or in a response body. Rather than trusting every path
to remember, the CLI registers the key once, and the writers (files.py for outputs, store.py for the
store, the CLI for its error line) pass their text through `scrub`; everything else printed to the
terminal (progress, warnings, summaries) passes through `ScrubbedStream`.
"""

from __future__ import annotations

from typing import Any, TextIO

PLACEHOLDER = "[API key hidden]"
MIN_LENGTH = 8  # shorter values (a dummy key for a local server) would mangle ordinary text

_secrets: set[str] = set()


def register(value: str | None) -> None:
    """Remember a secret for the rest of the process; short or empty values are ignored."""
    if value and len(value) >= MIN_LENGTH:
        _secrets.add(value)


def scrub(text: str) -> str:
    """`text` with every registered secret replaced by a placeholder (pure apart from the registry)."""
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: one key may contain another
        if secret in text:
            text = text.replace(secret, PLACEHOLDER)
    return text


class ScrubbedStream:
    """A terminal stream whose every write is scrubbed: the net under every print and progress bar."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(scrub(text))

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding: the real stream's
        return getattr(self.stream, name)
