"""The only module that speaks HTTP: one OpenAI-compatible request in, one response record out.

Why the official SDK: it is what OpenAI, vLLM, SGLang, llama.cpp, Ollama and most proxies are tested
against. The SDK retries 429/5xx/timeouts/connection errors with backoff (``model.max_retries``);
we add the one case it does not retry: a 200 whose body is not valid JSON.

The API key is read from the environment variable named in params and handed to the SDK; it is never
logged, stored, or put into an error message.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

import openai

from .params import ModelParams, ParamsError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "0.0.0.0")


class RequestFailed(RuntimeError):
    """A request that could not be answered after all retries; the message carries no secrets."""


def api_key_for(model: ModelParams, base_url: str) -> str:
    """The key from the environment variable named in params; local servers need none."""
    if model.api_key_env is None:
        if _is_local(base_url):
            return "no-key-needed-for-local-server"
        raise ParamsError(
            f"params.yaml: model.api_key_env is not set, but model.base_url = {base_url!r} is not local; "
            "set model.api_key_env to the NAME of the environment variable holding the key"
        )
    key = os.environ.get(model.api_key_env)
    if not key:
        raise ParamsError(
            f"params.yaml: model.api_key_env = {model.api_key_env!r}: that environment variable is not set; "
            f"export {model.api_key_env}=... (never put the key in params.yaml)"
        )
    return key


def _is_local(url: str) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    return host in LOCAL_HOSTS or host.startswith("127.")


def probe(base_url: str, timeout: float = 5.0) -> None:
    """One cheap GET before any paid request: fail fast, with a clear message, when nobody answers."""
    try:
        urllib.request.urlopen(f"{base_url}/models", timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # the server answered (401/404 are fine here: it exists and speaks HTTP)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ParamsError(
            f"params.yaml: model.base_url = {base_url!r}: unreachable ({reason}); "
            "check the URL and that the server is running"
        ) from None


class Client:
    """A small sampler: `await client.complete(request)` -> response record (text, usage, latency)."""

    def __init__(self, base_url: str, api_key: str, timeout: float, max_retries: int):
        self._sdk = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries
        )
        self._json_retries = max_retries

    async def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in request.items() if k != "endpoint"}
        last_error: Exception | None = None
        for attempt in range(self._json_retries + 1):
            started = time.monotonic()
            try:
                if request["endpoint"] == "chat":
                    raw = await self._sdk.chat.completions.create(**body)
                    choice = raw.choices[0]
                    text = choice.message.content or ""
                else:
                    raw = await self._sdk.completions.create(**body)
                    choice = raw.choices[0]
                    text = choice.text or ""
            except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
                last_error = exc  # a 200 with a body that is not JSON: the SDK does not retry it
                await asyncio.sleep(min(8.0, 0.5 * 2**attempt))
                continue
            except openai.APIError as exc:
                raise RequestFailed(_describe_error(exc)) from None
            latency = time.monotonic() - started
            return _record(text, choice.finish_reason, raw.usage, latency)
        raise RequestFailed(f"malformed response body after {self._json_retries + 1} attempts: {last_error}")

    async def close(self) -> None:
        await self._sdk.close()


def _describe_error(exc: openai.APIError) -> str:
    """Status and message only: never the request, whose headers carry the key."""
    status = getattr(exc, "status_code", None)
    return f"HTTP {status}: {exc.message}" if status else f"{type(exc).__name__}: {exc.message}"


def _record(text: str, finish_reason: str | None, usage: Any, latency: float) -> dict[str, Any]:
    details = getattr(usage, "completion_tokens_details", None) if usage is not None else None
    reasoning = getattr(details, "reasoning_tokens", None) if details is not None else None
    return {
        "text": text,
        "finish_reason": finish_reason,
        "completion_tokens": getattr(usage, "completion_tokens", None),
        "prompt_tokens": getattr(usage, "prompt_tokens", None),
        "reasoning_tokens": reasoning,
        "latency_s": round(latency, 3),
    }
