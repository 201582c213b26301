"""The only module that sends live requests: one OpenAI-compatible request in, one response record out.
(batch.py talks to the Batch API through the same SDK and parses its answers with `response_record`.)

Why the official SDK: it is what OpenAI, vLLM, SGLang, llama.cpp, Ollama and most proxies are tested
against. Why our own retry loop around it (the SDK's is switched off): we must also retry a 200 whose
body is not valid JSON (the SDK raises JSONDecodeError there and does not retry: measured), honour
Retry-After on every retryable status, count retries for the progress bar, and end every request either
with a response or with a `RequestFailed` that names the last error.

The API key is read from the environment variable named in params and handed to the SDK; it is never
logged, stored, or put into an error message (errors carry status and message only, never headers).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import openai

from ..analysis.thinking_text import COUNT_TOKENIZE, response_thinking
from ..params import NO_KEY, ModelParams, ParamsError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "0.0.0.0")
NO_KEY_SENT = "no-key"  # the bearer token of `api_key_env: none` (the SDK sends one; keyless servers ignore it)
RETRYABLE_STATUS = {408, 409, 429}
MAX_RETRY_AFTER = 120.0


class RequestFailed(RuntimeError):
    """A request that could not be answered after all retries; the message carries no secrets."""


class RequestRejected(RequestFailed):
    """A 4xx the server will repeat for the same body (400 bad parameter, 404 unknown model, 422...).

    Retrying cannot help. One sample's rejection (a prompt too long, a filtered problem) marks that sample
    failed; a run whose every request is rejected stops early instead (see engine.Engine.rejected).
    """


class AuthFailed(RuntimeError):
    """401/403: every further request would fail too, so the run stops (nothing is marked failed)."""


def api_key_for(model: ModelParams, base_url: str | list[str]) -> str:
    """The key from the environment variable named in params. Local servers need none, and neither does a
    remote one when params say `api_key_env: none`: an open vLLM on a GPU node has no key, and a made-up
    one in the environment would only hide that. A remote URL with api_key_env unset is refused, since
    most remote servers do need a key and the 401 would come only after the first paid request."""
    if model.api_key_env == NO_KEY:
        return NO_KEY_SENT
    if model.api_key_env is None:
        remote = [u for u in (base_url if isinstance(base_url, list) else [base_url]) if not _is_local(u)]
        if not remote:
            return "no-key-needed-for-local-server"
        raise ParamsError(
            f"params.yaml: model.api_key_env is not set, but model.base_url = {remote[0]!r} is not local; "
            "set model.api_key_env to the NAME of the environment variable holding the key, or to `none` "
            "if the server needs no key (e.g. vLLM started without --api-key)"
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


def probe(base_url: str | list[str], timeout: float = 5.0) -> list[str]:
    """One cheap GET per endpoint before any paid request; the ones that answer.

    Fails fast, with a clear message, when nobody answers; with several replicas, the ones that do not
    answer are left out of rotation (with a warning) and the run goes on with the others.
    """
    urls = base_url if isinstance(base_url, list) else [base_url]
    alive, errors = [], []
    for url in urls:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=timeout).close()
        except urllib.error.HTTPError:
            pass  # the server answered (401/404 are fine here: it exists and speaks HTTP)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url!r}: unreachable ({getattr(exc, 'reason', exc)})")
            continue
        alive.append(url)
    if not alive:
        raise ParamsError(
            f"params.yaml: model.base_url = {errors[0]}; check the URL and that the server is running"
        )
    for error in errors:
        print(f"warning: model.base_url {error}; left out of rotation", file=sys.stderr)
    return alive


@dataclass
class Counters:
    """What the progress bar and the end-of-run summary show."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    responses: int = 0
    rejections: int = 0
    completion_tokens: int = 0


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, `retry-after` in seconds or as an HTTP date."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return min(MAX_RETRY_AFTER, max(0.0, float(value) * scale))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if name == "retry-after" else None
            if parsed is not None:
                return min(MAX_RETRY_AFTER, max(0.0, parsed.timestamp() - time.time()))
    return None


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
    return rng.uniform(0, min(cap, base * 2**attempt))


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError, openai.APIConnectionError,
                        EmptyChoices, StreamBroken)):
        return True  # APITimeoutError is an APIConnectionError
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRYABLE_STATUS or exc.status_code >= 500
    return False


class EmptyChoices(Exception):
    """A 200 with no choices at all: nothing to store, ask again."""


class StreamBroken(Exception):
    """A streamed response cut before its end (connection dropped, error event, no finish_reason): the
    part received is dropped and the request asked again."""


class _Namespace:
    """Attribute access over the pieces a stream delivered, in the shapes response_record reads."""

    def __init__(self, **fields: Any):
        self.__dict__.update(fields)


class StreamedResponse:
    """The chunks of one streamed response gathered per choice: the answer's deltas and the reasoning's
    deltas (`reasoning_content` or `reasoning`) kept apart, log-probabilities in order, the usage chunk."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.chunks = 0
        self.usage: Any = None
        self.text: dict[int, list[str]] = {}
        self.reasoning: dict[int, dict[str, list[str]]] = {}
        self.refusal: dict[int, list[str]] = {}
        self.logprobs: dict[int, list[Any]] = {}
        self.finish: dict[int, str | None] = {}

    def add(self, chunk: Any) -> None:
        self.chunks += 1
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        for choice in getattr(chunk, "choices", None) or []:
            i = choice.index
            self.text.setdefault(i, [])
            self.finish.setdefault(i, None)
            delta = getattr(choice, "delta", None) if self.endpoint == "chat" else choice
            piece = getattr(delta, "content" if self.endpoint == "chat" else "text", None)
            if piece:
                self.text[i].append(piece)
            for name in ("reasoning_content", "reasoning"):
                value = getattr(delta, name, None)
                if isinstance(value, str) and value:
                    self.reasoning.setdefault(i, {}).setdefault(name, []).append(value)
            refusal = getattr(delta, "refusal", None)
            if isinstance(refusal, str) and refusal:
                self.refusal.setdefault(i, []).append(refusal)
            logprobs = getattr(choice, "logprobs", None)
            if logprobs is not None:
                self.logprobs.setdefault(i, []).append(logprobs)
            if choice.finish_reason is not None:
                self.finish[i] = choice.finish_reason

    def assembled(self) -> Any:
        """The whole response, as the SDK would have parsed it unstreamed; StreamBroken if incomplete."""
        if not self.text or any(reason is None for reason in self.finish.values()):
            raise StreamBroken(f"stream ended after {self.chunks} chunks without every choice's finish_reason")
        return _Namespace(choices=[self._choice(i) for i in sorted(self.text)], usage=self.usage)

    def _choice(self, i: int) -> Any:
        text = "".join(self.text[i])
        logprobs = _joined_logprobs(self.logprobs.get(i, []))
        if self.endpoint != "chat":
            return _Namespace(index=i, text=text, finish_reason=self.finish[i], logprobs=logprobs)
        reasoning = {name: "".join(parts) for name, parts in self.reasoning.get(i, {}).items()}
        message = _Namespace(content=text, refusal="".join(self.refusal[i]) if i in self.refusal else None,
                             **reasoning)
        return _Namespace(index=i, message=message, finish_reason=self.finish[i], logprobs=logprobs)


def _joined_logprobs(pieces: list[Any]) -> Any:
    """One choice's log-probabilities from its chunks: chat's `content[]` lists concatenated, or the legacy
    completions arrays (`tokens`, `token_logprobs`) concatenated; None when no chunk carried any."""
    content = [entry for piece in pieces for entry in (_field(piece, "content") or [])]
    if content:
        return {"content": content}
    tokens = [t for piece in pieces for t in (_field(piece, "tokens") or [])]
    if tokens:
        return {"tokens": tokens,
                "token_logprobs": [v for piece in pieces for v in (_field(piece, "token_logprobs") or [])]}
    return None


def _server_message(exc: openai.APIStatusError) -> str:
    """The server's own words. SDK releases differ in what `body` holds (the `error` object, or the whole
    JSON body around it), so both shapes are read; the SDK's message is the fallback."""
    body = exc.body
    inner = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("message"), str):
        return inner["message"]
    return re.sub(r"^Error code: \d+ - ", "", exc.message)  # the SDK's prefix repeats the status


def describe_error(exc: BaseException) -> str:
    """Status and message only: never the request, whose headers carry the key."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {_server_message(exc)}"[:300]
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return f"connection error: {type(exc.__cause__).__name__ if exc.__cause__ else 'unknown'}"
    if isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError)):
        return "malformed response body (not valid JSON)"
    if isinstance(exc, EmptyChoices):
        return "response without choices"
    if isinstance(exc, StreamBroken):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:300]


class Client:
    """A small sampler: `await client.complete(request)` -> response record (choices, usage, latency)."""

    def __init__(
        self, base_url: str, api_key: str, timeout: float, max_retries: int,
        backoff_base: float = 0.5, backoff_cap: float = 30.0, stream: bool = False,
    ):
        # aiohttp under the SDK: measured 1.7x the requests/s of its default transport at concurrency 64
        self._sdk = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0,
            http_client=openai.DefaultAioHttpClient(timeout=timeout),
        )
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.counters = Counters()
        self._rng = random.Random()  # jitter only: timing, never content
        self.stream = stream  # sampling.stream: how the response travels, never part of the request or its key
        self._root = server_root(base_url)
        self._tokenize: bool | None = None  # does the server count tokens for us (llama-server's /tokenize)?

    async def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in request.items() if k != "endpoint"}
        for attempt in range(self.max_retries + 1):
            started = time.monotonic()
            self.counters.requests += 1
            try:
                record = await self._send(request["endpoint"], body)
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise AuthFailed(
                    f"{describe_error(exc)}; check the key in the variable named by model.api_key_env"
                ) from None
            except Exception as exc:  # noqa: BLE001 - classified just below
                if not _retryable(exc):
                    self.counters.failures += 1
                    if isinstance(exc, openai.APIStatusError) and 400 <= exc.status_code < 500:
                        self.counters.rejections += 1
                        raise RequestRejected(describe_error(exc)) from None
                    raise RequestFailed(describe_error(exc)) from None
                error = describe_error(exc)
                if attempt == self.max_retries:
                    self.counters.failures += 1
                    raise RequestFailed(f"failed after {attempt + 1} attempts; last error: {error}") from None
                self.counters.retries += 1
                response = getattr(exc, "response", None)
                wait = retry_after_seconds(getattr(response, "headers", None))
                if wait is None:
                    wait = backoff_seconds(attempt, self.backoff_base, self.backoff_cap, self._rng)
                await asyncio.sleep(wait)
                continue
            record["latency_s"] = round(time.monotonic() - started, 3)
            await self._count_reasoning(request["endpoint"], record)
            self.counters.responses += 1
            self.counters.completion_tokens += record.get("completion_tokens") or 0
            return record
        raise AssertionError("unreachable")

    async def _send(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.stream:
            return await self._send_streamed(endpoint, body)
        if endpoint == "chat":
            raw: Any = await self._sdk.chat.completions.create(**body)
        else:
            raw = await self._sdk.completions.create(**body)
        return response_record(endpoint, raw)

    async def _send_streamed(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """One response streamed as server-sent events, gathered into the record the same response sent
        whole would give (response_record on the assembled choices). A stream that breaks or ends
        without every choice's finish_reason raises StreamBroken, a retry: nothing partial is returned,
        so nothing partial is ever stored."""
        create = self._sdk.chat.completions.create if endpoint == "chat" else self._sdk.completions.create
        gathered = StreamedResponse(endpoint)
        try:
            stream = await create(**body, stream=True, stream_options={"include_usage": True})
            async for chunk in stream:
                gathered.add(chunk)
        except openai.APIStatusError:
            raise  # the server refused the request before streaming: classified as any other status
        except Exception as exc:  # noqa: BLE001 - any break in the middle of a stream is the same retry
            raise StreamBroken(f"stream broken after {gathered.chunks} chunks ({type(exc).__name__})") from None
        return response_record(endpoint, gathered.assembled())

    async def close(self) -> None:
        await self._sdk.close()

    async def _count_reasoning(self, endpoint: str, record: dict[str, Any]) -> None:
        """Reasoning tokens counted exactly where the server can tell: a chat response with reasoning text
        (a separate field or inline think blocks) but no usage count is tokenized by the server itself
        (llama-server's /tokenize), and the record says so (`reasoning_count`). Servers without the
        endpoint are asked once; their reasoning is then estimated from characters downstream."""
        if endpoint != "chat" or record.get("reasoning_tokens") is not None or self._tokenize is False:
            return
        choices = record.get("choices", [record])
        texts = [response_thinking(c.get("reasoning"), c.get("text") or "")[0] for c in choices]
        if not any(texts):
            return
        counts = [await asyncio.to_thread(tokenize_count, self._root, text) if text else 0 for text in texts]
        self._tokenize = None not in counts
        if self._tokenize:
            record["reasoning_tokens"] = sum(c or 0 for c in counts)
            record["reasoning_count"] = COUNT_TOKENIZE


def server_root(base_url: str) -> str:
    """The server's own root, where llama-server keeps its non-OpenAI endpoints (/tokenize, /apply-template)."""
    root = base_url.rstrip("/")
    return root.removesuffix("/v1")


def _post_json(url: str, body: dict[str, Any], timeout: float = 30.0) -> Any:
    """One small JSON POST with no key (these helper endpoints need none); None if the server has no such
    endpoint or does not answer."""
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def tokenize_count(root: str, text: str) -> int | None:
    """How many tokens the server's tokenizer makes of `text` (llama-server's POST /tokenize), or None."""
    answer = _post_json(f"{root}/tokenize", {"content": text, "add_special": False})
    tokens = answer.get("tokens") if isinstance(answer, dict) else None
    return len(tokens) if isinstance(tokens, list) else None


def generation_prompt(base_url: str) -> str | None:
    """The prompt the server's chat template builds for one user message (llama-server's POST
    /apply-template), or None where the server has no such endpoint. Sends nothing to the model."""
    answer = _post_json(f"{server_root(base_url)}/apply-template",
                        {"messages": [{"role": "user", "content": "1 + 1 = ?"}]})
    prompt = answer.get("prompt") if isinstance(answer, dict) else None
    return prompt if isinstance(prompt, str) else None


def reasoning_of(message: Any) -> str | None:
    """The thinking a server returns beside the answer: `reasoning_content` (DeepSeek's API, SGLang, older
    vLLM) or `reasoning` (vLLM since it renamed the field, OpenRouter). The SDK keeps unknown fields."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(message, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def response_record(endpoint: str, raw: Any) -> dict[str, Any]:
    """The stored record of one SDK response (a live one, or a batch output line validated into the same
    SDK type): its choices in index order, and its usage."""
    if endpoint == "chat":
        choices = [
            {
                "text": c.message.content or "",
                "finish_reason": c.finish_reason,
                "refusal": getattr(c.message, "refusal", None),
                "reasoning": reasoning_of(c.message),
                "logprobs": logprobs_of(c),
            }
            for c in sorted(raw.choices, key=lambda c: c.index)
        ]
    else:
        choices = [
            {"text": c.text or "", "finish_reason": c.finish_reason, "refusal": None,
             "logprobs": logprobs_of(c)}
            for c in sorted(raw.choices, key=lambda c: c.index)
        ]
    if not choices:
        raise EmptyChoices()
    return _record(choices, raw.usage)


def logprobs_of(choice: Any) -> dict[str, list[Any]] | None:
    """A choice's token log-probabilities, stored compactly as {tokens, token_logprobs}, or None when the
    server sent none (then nothing is stored and records stay as they were). Read by shape, not by
    endpoint: chat's `logprobs.content[]` {token, logprob}, which llama.cpp's llama-server also sends on
    /v1/completions, or OpenAI completions' `logprobs.tokens` / `token_logprobs`. (The SDK types only the
    shape it expects for the endpoint; the other arrives as plain dicts.)"""
    logprobs = getattr(choice, "logprobs", None)
    if logprobs is None:
        return None
    content = _field(logprobs, "content") or []
    if content:
        return {"tokens": [_field(t, "token") for t in content], "token_logprobs": [_field(t, "logprob") for t in content]}
    tokens = _field(logprobs, "tokens")
    return {"tokens": list(tokens), "token_logprobs": list(_field(logprobs, "token_logprobs") or [])} if tokens else None


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _record(choices: list[dict[str, Any]], usage: Any) -> dict[str, Any]:
    """One stored response. A single choice is stored flat (text, finish_reason, ...); several as `choices`.

    `cached_tokens` (prompt tokens served from the provider's prompt cache, billed at the cached price) is
    kept only when the provider reports it, so the records of servers without a prompt cache are unchanged.
    """
    details = getattr(usage, "completion_tokens_details", None) if usage is not None else None
    reasoning = getattr(details, "reasoning_tokens", None) if details is not None else None
    record: dict[str, Any] = {
        "completion_tokens": getattr(usage, "completion_tokens", None),
        "prompt_tokens": getattr(usage, "prompt_tokens", None),
        "reasoning_tokens": reasoning,
    }
    prompt_details = getattr(usage, "prompt_tokens_details", None) if usage is not None else None
    cached = getattr(prompt_details, "cached_tokens", None) if prompt_details is not None else None
    if cached is not None:
        record["cached_tokens"] = cached
    if len(choices) == 1:
        record.update(text=choices[0]["text"], finish_reason=choices[0]["finish_reason"])
        if choices[0]["refusal"]:
            record["refusal"] = choices[0]["refusal"]
        if choices[0].get("reasoning"):
            record["reasoning"] = choices[0]["reasoning"]
        if choices[0].get("logprobs"):
            record["logprobs"] = choices[0]["logprobs"]
    else:
        record["choices"] = [{k: v for k, v in c.items() if k not in ("reasoning", "logprobs") or v} for c in choices]
    return record


class Router:
    """Spreads requests over replicas of one model, at most `per_endpoint` in flight on each.

    A replica whose request fails after its retries is rested for `cooldown` seconds and the request is
    sent to another one, so a dying replica costs time, never a sample. Scheduling stays simple on
    purpose: batching and queueing are the serving engine's job.
    """

    def __init__(self, clients: list[Client], per_endpoint: int, cooldown: float = 30.0):
        self.clients = clients
        self.per_endpoint = per_endpoint
        self.cooldown = cooldown
        self.inflight = [0] * len(clients)
        self.rested_until = [0.0] * len(clients)
        self._slots: list[asyncio.Semaphore] | None = None

    @property
    def counters(self) -> Counters:
        total = Counters()
        for client in self.clients:
            for name in ("requests", "retries", "failures", "responses", "rejections", "completion_tokens"):
                setattr(total, name, getattr(total, name) + getattr(client.counters, name))
        return total

    def _pick(self, tried: set[int]) -> int:
        now = time.monotonic()
        candidates = [i for i in range(len(self.clients)) if i not in tried]
        healthy = [i for i in candidates if self.rested_until[i] <= now] or candidates
        return min(healthy, key=lambda i: (self.rested_until[i] > now, self.inflight[i], i))

    async def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._slots is None:
            self._slots = [asyncio.Semaphore(self.per_endpoint) for _ in self.clients]
        tried: set[int] = set()
        while True:
            index = self._pick(tried)
            async with self._slots[index]:
                self.inflight[index] += 1
                try:
                    return await self.clients[index].complete(request)
                except RequestRejected:
                    raise  # about the request, not the replica: every replica would say the same
                except RequestFailed:
                    self.rested_until[index] = time.monotonic() + self.cooldown
                    tried.add(index)
                    if len(tried) == len(self.clients):
                        raise
                finally:
                    self.inflight[index] -= 1

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
