"""A small OpenAI-protocol HTTP server for tests: real sockets, real JSON, a toy "model" that does arithmetic,
and faults injected on demand.

The model reads `What is <expr>?` from the prompt. It needs a per-(seed, problem) number of reasoning
tokens (one token = one word here) to get the answer right: a forced answer after fewer tokens is a
seeded guess, so accuracy rises with the budget exactly like a real model's, but deterministically.

Faults (`FakeModel.fault_rate`, `FakeModel.faults`): each POST draws, from a RNG seeded by the request body
and how many times that body was seen, whether to misbehave and how: 429 (with Retry-After), 500, 503, a
timeout (no answer until the client gives up), a connection reset, a 200 whose body is not JSON, a 200
with no choices, an empty answer, a refusal, fewer choices than `n`. `FakeModel.hang_forever`: a wedged
server (answers GET /models, never answers a completion). Every request is recorded; every
successful (billable) response is counted per request body, so tests can prove nothing was paid twice.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EXPR = re.compile(r"What is ([0-9+\-* ]+)\?")
# Faults that cost nothing (the client must retry) and faults that are billable answers (stored as is).
TRANSIENT = ("429", "500", "503", "timeout", "reset", "malformed", "no_choices")
# A streamed response (`stream: true`) cut midway: half its events, then a reset connection. Not among
# ALL_FAULTS (which non-streamed tests draw from); ask for it with `faults=("stream_break",)`.
STREAM_BREAK = "stream_break"
BILLABLE = ("empty", "refusal", "fewer")
ALL_FAULTS = TRANSIENT + BILLABLE
# `reasoning_effort` levels the toy reasoning model accepts, and the hidden reasoning tokens each costs.
EFFORT_TOKENS = {"minimal": 8, "low": 64, "medium": 256, "high": 1024}
# Where the assistant's turn starts in a completions prompt, per chat template (chatml/Qwen3, DeepSeek-R1).
ASSISTANT_MARKERS = ("<|im_start|>assistant\n", "<\uff5cAssistant\uff5c>")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
NATURAL_THOUGHT = 40  # reasoning tokens the toy thinking model spends when nothing limits it
IGNORED_THOUGHT = 300  # what it spends when the server ignores the thinking budget it was sent


def _h(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:4], "big")


def body_key(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _solve(prompt: str) -> int | None:
    m = EXPR.search(prompt)
    return eval(m.group(1)) if m else None


class FakeModel:
    def __init__(self, fault_rate: float = 0.0, faults: tuple[str, ...] = ALL_FAULTS, hang_s: float = 1.5):
        self.requests: list[dict[str, Any]] = []
        self.successes: Counter[str] = Counter()  # billable responses sent, per request body
        self.seen: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.fault_rate = fault_rate
        self.faults = faults
        self.hang_s = hang_s
        self.delay_s = 0.0  # per request, to make runs slow enough to interrupt
        self.in_flight = 0  # completions being answered right now
        self.max_in_flight = 0  # the most ever answered at once: above one run's concurrency, two runs met
        self.hang_forever = False  # a wedged server: completions are accepted and never answered
        # Reasoning models on chat: None (no visible thinking), "reasoning_content" / "reasoning" (a separate
        # field, as vLLM, SGLang and DeepSeek's API return it) or "inline" (<think>...</think> in content).
        self.reasoning_field: str | None = None
        self.report_reasoning_tokens = True  # usage.completion_tokens_details.reasoning_tokens
        self.provider: str | None = None  # "anthropic" or "gemini": that provider's documented rejections
        self.ignored: set[str] = set()  # request fields this server ignores (llama.cpp: max_completion_tokens)
        # llama.cpp's llama-server answers /v1/completions' `logprobs` in the chat shape (`content[]`, its
        # server-task.cpp to_json_oaicompat), not OpenAI's `tokens` / `token_logprobs`
        self.logprobs_shape = "openai"  # or "llama.cpp"
        self.released = threading.Event()  # set at shutdown: hung handlers give up their connection
        self.lock = threading.Lock()
        self.url = ""
        self.cached_tokens = 0  # report this many prompt tokens as served from a prompt cache
        self.batch: Any = None  # a fake_batch.BatchAPI: serve OpenAI's Files and Batch APIs too
        # llama-server's own endpoints, off by default (OpenAI has neither): POST /tokenize with the toy
        # tokenizer, and POST /apply-template rendering one user message with this generation prompt's end
        self.tokenize = False
        self.generation_prompt_end: str | None = None
        self.helper_requests: list[dict[str, Any]] = []  # /tokenize and /apply-template: never billed

    def bill(self, body: dict[str, Any]) -> None:
        """Count one billable response to `body` (live or in a batch)."""
        with self.lock:
            self.successes[body_key(body)] += 1

    def needed(self, seed: int, prompt: str) -> int:
        return 8 + _h(seed, prompt) % 40  # 8..47 reasoning tokens to solve it

    def pick_fault(self, body: dict[str, Any]) -> str | None:
        key = body_key(body)
        with self.lock:
            self.seen[key] += 1
            attempt = self.seen[key]
        rng = random.Random(f"{key}:{attempt}")
        if self.fault_rate <= 0 or rng.random() >= self.fault_rate:
            return None
        fault = rng.choice(self.faults)
        if fault == "fewer" and body.get("n", 1) <= 1:
            return None
        with self.lock:
            self.injected[fault] += 1
        return fault

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt, seed, max_tokens = body["prompt"], body.get("seed", 0), body.get("max_tokens") or 256
        answer = _solve(prompt)
        marker = next((m for m in ASSISTANT_MARKERS if m in prompt), ASSISTANT_MARKERS[0])
        if prompt.endswith("\\boxed{"):  # forced answer: right only if the reasoning was long enough
            head = prompt.split(marker, 1)
            reasoning = head[1] if len(head) > 1 else ""
            base = head[0] + marker
            words = [w for w in reasoning.split() if w not in (THINK_OPEN, THINK_CLOSE)]
            ok = len(words) >= self.needed(seed, base)
            value = answer if ok else _h("guess", seed, prompt) % 50
            return self._completion([(f"{value}}}", "stop", 2)])
        generated = prompt.split(marker, 1)[1] if marker in prompt else ""
        if generated.startswith(THINK_OPEN) and THINK_CLOSE not in generated:
            return self._completion([self.thinking(body, prompt.split(marker, 1)[0] + marker, generated, answer, i)
                                     for i in range(body.get("n", 1))])
        outs = []
        for i in range(body.get("n", 1)):
            need = self.needed(seed + i, prompt)
            if max_tokens < need:
                outs.append((" ".join(["step"] * max_tokens), "length", max_tokens))
            else:
                outs.append((" ".join(["step"] * (need - 2) + [f"\\boxed{{{answer}}}"]), "stop", need - 1))
        return self._completion(outs)

    def thinking(self, body: dict[str, Any], base: str, generated: str, answer: int | None,
                 i: int) -> tuple[str, str, int]:
        """A think-tag model inside its thinking block (the prompt opened it): it thinks `needed` words, and
        again as much after every "Wait", writing a wrong draft `\\boxed{}` at the start; then it closes the
        block and answers. `stop` is honoured (the text stops before the stop string, as OpenAI's does)."""
        seed = body.get("seed", 0)
        max_tokens = body.get("max_tokens") or 256
        thought = [w for w in generated.split() if w != THINK_OPEN]
        need = self.needed(seed + i, base) * (1 + generated.count("Wait"))
        words = ["step"] * max(0, need - len(thought))
        if not thought and words:
            words[0] = f"\\boxed{{{(answer or 0) + 7}}}"  # a draft answer, wrong on purpose
        if max_tokens < len(words):
            return " ".join(words[:max_tokens]), "length", max_tokens
        text = " ".join(words) + f"\n{THINK_CLOSE}\n\nThe answer is \\boxed{{{answer}}}."
        stops = body.get("stop") or []
        for stop in [stops] if isinstance(stops, str) else stops:
            if stop in text:
                return text[: text.index(stop)], "stop", len(words)
        return text, "stop", len(words) + 5

    def thinking_budget(self, body: dict[str, Any]) -> int | None:
        """The thinking budget a request sets, in whichever field its server reads (None: no budget)."""
        google = body.get("extra_body", {}).get("google", {}).get("thinking_config", {})
        candidates = {
            "thinking_token_budget": body.get("thinking_token_budget"),  # vLLM
            "custom_params": (body.get("custom_params") or {}).get("thinking_budget"),  # SGLang
            "thinking_budget_tokens": body.get("thinking_budget_tokens"),  # llama.cpp
            "thinking": (body.get("thinking") or {}).get("budget_tokens"),  # Anthropic
            "google": google.get("thinking_budget"),  # Gemini
        }
        return next((v for k, v in candidates.items() if v is not None and k not in self.ignored), None)

    def provider_rejection(self, body: dict[str, Any]) -> str | None:
        """Anthropic's and Gemini's documented rejections of thinking requests, in their own words."""
        if self.provider == "anthropic" and "thinking" in body:
            budget = body["thinking"].get("budget_tokens", 0)
            if budget < 1024:
                return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            if (body.get("max_tokens") or body.get("max_completion_tokens") or 0) <= budget:
                return "`max_tokens` must be greater than `thinking.budget_tokens`."
            if body.get("temperature") not in (None, 1):
                return "`temperature` may only be set to 1 when thinking is enabled."
            if body.get("n", 1) != 1:
                return "n: only n = 1 is supported"
        if self.provider == "gemini" and "reasoning_effort" in body and "extra_body" in body:
            return "reasoning_effort and thinking_budget cannot both be set"
        return None

    def rejection(self, body: dict[str, Any]) -> str | None:
        """OpenAI's rules for reasoning models (a request with `reasoning_effort`): a 400 names the field."""
        provider = self.provider_rejection(body)
        if provider is not None:
            return provider
        if "reasoning_effort" not in body or self.provider == "gemini":
            return None
        effort = body["reasoning_effort"]
        if effort not in EFFORT_TOKENS:
            return f"Invalid value: '{effort}'. Supported values are: {', '.join(map(repr, EFFORT_TOKENS))}."
        for name in ("temperature", "top_p"):
            if name in body and body[name] != 1:
                return f"Unsupported value: '{name}' does not support {body[name]} with this model."
        if "max_tokens" in body:
            return ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                    "Use 'max_completion_tokens' instead.")
        if "logprobs" in body:
            return "Unsupported parameter: 'logprobs' is not supported with this model."
        return None

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        content = body["messages"][-1]["content"]
        answer = _solve(content)
        seed = body.get("seed", 0)
        if self.reasoning_field is not None:
            return self.reasoning_chat(body, content, answer, seed)
        choices = []
        limit = next((body[f] for f in ("max_completion_tokens", "max_tokens")
                      if body.get(f) is not None and f not in self.ignored), None)
        effort = body.get("reasoning_effort")
        thought = 0  # hidden reasoning tokens, all choices: more at higher effort, and more often right
        visible = 0  # answer tokens, all choices: a cut answer counts only what was sent
        for i in range(body.get("n", 1)):
            ok = _h("chat", seed + i, content) % 2 == 0
            if effort is not None:
                thought += EFFORT_TOKENS[effort] + _h("effort", seed + i, content) % 32
                ok = _h("chat", seed + i, content) % len(EFFORT_TOKENS) < list(EFFORT_TOKENS).index(effort)
            words = f"The answer is {answer if ok else answer + 1}.".split()
            finish = "length" if limit is not None and limit < 5 else "stop"  # the answer is 5 tokens
            text = " ".join(words[:limit] if finish == "length" else words)
            visible += min(5, limit) if finish == "length" and limit is not None else 5
            choices.append({"index": i, "finish_reason": finish,
                            "message": {"role": "assistant", "content": text}})
        return {
            "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": choices,
            "usage": {"prompt_tokens": 10, "completion_tokens": visible + thought,
                      "total_tokens": 10 + visible + thought,
                      "completion_tokens_details": {"reasoning_tokens": 3 * len(choices) + thought}},
        }

    def reasoning_chat(self, body: dict[str, Any], content: str, answer: int | None, seed: int) -> dict[str, Any]:
        """A thinking model behind a reasoning parser: it thinks (a wrong draft `\\boxed{}` first) up to the
        thinking budget the request set, if the server reads that field, then answers right."""
        budget = self.thinking_budget(body)
        thought = NATURAL_THOUGHT if budget is None else min(budget, NATURAL_THOUGHT)
        if budget is None and any(k in body for k in ("thinking_token_budget", "custom_params",
                                                       "thinking_budget_tokens")):
            thought = IGNORED_THOUGHT  # a budget was sent, in a field this server does not read
        reasoning = " ".join([f"\\boxed{{{(answer or 0) + 7}}}"] + ["step"] * (thought - 1))
        text = f"The answer is \\boxed{{{answer}}}."
        limit = next((body[f] for f in ("max_completion_tokens", "max_tokens")
                      if body.get(f) is not None and f not in self.ignored), None)
        tokens = thought + 5
        finish = "stop"
        if limit is not None and tokens > limit:  # cut inside the thinking: no answer at all
            tokens, finish, text = limit, "length", ""
            reasoning = " ".join(reasoning.split()[:limit])
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if self.reasoning_field == "inline":
            message["content"] = f"{THINK_OPEN}{reasoning}" + (f"{THINK_CLOSE}{text}" if finish == "stop" else "")
        else:
            message[self.reasoning_field] = reasoning
        usage: dict[str, Any] = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}
        if self.report_reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": min(thought, tokens)}
        return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": finish, "message": message}], "usage": usage}

    @staticmethod
    def _completion(outs: list[tuple[str, str, int]]) -> dict[str, Any]:
        tokens = sum(t for _, _, t in outs)
        return {
            "id": "cmpl-test", "object": "text_completion", "created": 0, "model": "fake",
            "choices": [{"index": i, "text": text, "finish_reason": finish, "logprobs": None}
                        for i, (text, finish, _) in enumerate(outs)],
            "usage": {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens},
        }

    def respond(self, path: str, body: dict[str, Any], fault: str | None) -> dict[str, Any]:
        payload = self.chat(body) if path.endswith("/chat/completions") else self.completion(body)
        if fault == "no_choices":
            payload["choices"] = []
        elif fault == "empty":
            for c in payload["choices"]:
                if "message" in c:
                    c["message"]["content"] = ""
                else:
                    c["text"] = ""
        elif fault == "refusal":
            for c in payload["choices"]:
                c["finish_reason"] = "content_filter"
                if "message" in c:
                    c["message"]["content"] = None
                    c["message"]["refusal"] = "I can't help with that."
                else:
                    c["text"] = ""
        elif fault == "fewer":
            payload["choices"] = payload["choices"][: max(1, len(payload["choices"]) // 2)]
        if body.get("logprobs") and fault not in ("no_choices",):
            for c in payload["choices"]:
                attach_logprobs(c, body.get("seed", 0), self.logprobs_shape)
        if self.cached_tokens:
            usage = payload["usage"]
            usage["prompt_tokens_details"] = {"cached_tokens": min(self.cached_tokens, usage["prompt_tokens"])}
        return payload


def _tokens(text: str) -> list[str]:
    """The toy tokenizer: a word with the whitespace before it (so the tokens join back to the text)."""
    return re.findall(r"\s*\S+|\s+$", text)


def _logprob(seed: int, position: int, token: str) -> float:
    """A deterministic log-probability in (-2.5, 0): the same request, the same numbers."""
    return -((_h("logprob", seed, position, token) % 1000) + 1) / 400


def attach_logprobs(choice: dict[str, Any], seed: int, shape: str = "openai") -> None:
    """OpenAI's shapes: chat `logprobs.content[]` of {token, logprob, bytes, top_logprobs} (top_logprobs: 0
    asks for no alternatives), completions `logprobs.tokens` / `token_logprobs` / `top_logprobs` /
    `text_offset`; with shape "llama.cpp", completions too get the chat shape, as llama-server sends it."""
    if "message" in choice or shape == "llama.cpp":
        text = choice["message"].get("content") if "message" in choice else choice.get("text")
        tokens = _tokens(text or "")
        choice["logprobs"] = {"content": [{"token": t, "logprob": _logprob(seed, i, t), "bytes": list(t.encode()),
                                           "top_logprobs": []} for i, t in enumerate(tokens)], "refusal": None}
        return
    tokens = _tokens(choice.get("text") or "")
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    values = [_logprob(seed, i, t) for i, t in enumerate(tokens)]
    choice["logprobs"] = {"tokens": tokens, "token_logprobs": values,
                          "top_logprobs": [{t: v} for t, v in zip(tokens, values)], "text_offset": offsets}


def stream_events(payload: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole response cut into the chunks a streaming server sends: per choice, the reasoning field's
    words, then the answer's (each with its log-probability entries), then a finish chunk; the usage last
    when `stream_options.include_usage` asks for it."""
    chat = "message" in (payload["choices"] or [{}])[0]
    events = []
    for choice in payload["choices"]:
        i, message = choice["index"], choice.get("message") or {}
        text = (message.get("content") or "") if chat else choice["text"]
        for field in ("reasoning_content", "reasoning"):
            for piece in _tokens(message.get(field) or ""):
                events.append(_chunk(payload, i, {field: piece}, None))
        pieces = _tokens(text)
        logprobs = choice.get("logprobs") or {}
        entries = logprobs.get("content") or []
        for n, piece in enumerate(pieces):
            event = _chunk(payload, i, {"content": piece} if chat else {"text": piece}, None)
            if entries and len(entries) == len(pieces):
                event["choices"][0]["logprobs"] = {"content": [entries[n]]}
            elif logprobs.get("tokens") and len(logprobs["tokens"]) == len(pieces):
                event["choices"][0]["logprobs"] = {"tokens": [logprobs["tokens"][n]],
                                                   "token_logprobs": [logprobs["token_logprobs"][n]]}
            events.append(event)
        if message.get("refusal"):
            events.append(_chunk(payload, i, {"refusal": message["refusal"]}, None))
        events.append(_chunk(payload, i, {} if chat else {"text": ""}, choice["finish_reason"]))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append({"id": payload["id"], "object": events[0]["object"] if events else "chat.completion.chunk",
                       "created": 0, "model": payload["model"], "choices": [], "usage": payload["usage"]})
    return events


def _chunk(payload: dict[str, Any], index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    chat = payload["object"] == "chat.completion"
    choice: dict[str, Any] = {"index": index, "finish_reason": finish}
    if chat:
        choice["delta"] = delta
    else:
        choice.update(delta)
    return {"id": payload["id"], "object": "chat.completion.chunk" if chat else "text_completion",
            "created": 0, "model": payload["model"], "choices": [choice]}


def serve(model: FakeModel) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), headers)

        def _batch_api(self, method: str, body: bytes = b"") -> bool:
            """OpenAI's Files and Batch APIs (tests/fake_batch.py), when the model serves them."""
            if model.batch is None or not self.path.startswith(("/v1/files", "/v1/batches")):
                return False
            status, data, kind = model.batch.handle(method, self.path, self.headers, body)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return True

        def _llama_cpp_helper(self, body: dict[str, Any]) -> None:
            """llama-server's /tokenize and /apply-template (404 unless the model enables them)."""
            with model.lock:
                model.helper_requests.append({"path": self.path, "body": body})
            if self.path == "/tokenize" and model.tokenize:
                self._json(200, {"tokens": list(range(len(_tokens(body["content"]))))})
            elif self.path == "/apply-template" and model.generation_prompt_end is not None:
                user = body["messages"][-1]["content"]
                self._json(200, {"prompt": f"<|im_start|>user\n{user}<|im_end|>\n{model.generation_prompt_end}"})
            else:
                self._json(404, {"error": {"message": "File Not Found", "type": "not_found_error"}})

        def do_GET(self) -> None:
            if self._batch_api("GET"):
                return
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            if self._batch_api("POST", raw):
                return
            body = json.loads(raw)
            if self.path in ("/tokenize", "/apply-template"):
                self._llama_cpp_helper(body)
                return
            with model.lock:
                model.requests.append({"path": self.path, "body": body,
                                       "authorization": self.headers.get("Authorization")})
            if not self.path.endswith("/completions"):
                self._json(404, {"error": {"message": "not found"}})
                return
            with model.lock:
                model.in_flight += 1
                model.max_in_flight = max(model.max_in_flight, model.in_flight)
            try:
                self._complete(body)
            finally:
                with model.lock:
                    model.in_flight -= 1

        def _complete(self, body: dict[str, Any]) -> None:
            if model.hang_forever:
                model.released.wait()
                self.close_connection = True
                return
            if model.delay_s:
                time.sleep(model.delay_s)
            fault = model.pick_fault(body)
            if fault in ("429", "500", "503"):
                headers = {"Retry-After": "0"} if fault == "429" else {}
                self._json(int(fault), {"error": {"message": f"injected {fault}", "type": "server_error"}},
                           headers)
                return
            if fault == "timeout":
                time.sleep(model.hang_s)
                self.close_connection = True
                return
            if fault == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.close_connection = True
                self.connection.close()
                return
            if fault == "malformed":
                self._send(200, b'{"id": "cmpl-broken", "choices": [{"text": "4')
                return
            rejected = model.rejection(body)
            if rejected is not None:
                self._json(400, {"error": {"message": rejected, "type": "invalid_request_error"}})
                return
            payload = model.respond(self.path, body, fault)
            if fault != "no_choices":
                model.bill(body)
            if body.get("stream"):
                self._stream(stream_events(payload, body), broken=fault == STREAM_BREAK)
            else:
                self._json(200, payload)

        def _stream(self, events: list[dict[str, Any]], broken: bool) -> None:
            """Server-sent events, as OpenAI's and llama.cpp's servers send them; `broken`: half, then a reset."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for event in events[: len(events) // 2] if broken else events:
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
            if broken:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.connection.close()
                return
            self.wfile.write(b"data: [DONE]\n\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def main() -> None:
    """Run standalone (for the SIGKILL test and benchmarks): prints its URL, serves until killed."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--log", help="append one JSON line per billable response here")
    parser.add_argument("--hang", action="store_true", help="wedged: answer /models, never a completion")
    args = parser.parse_args()
    model = FakeModel(fault_rate=args.fault_rate)
    model.delay_s = args.delay
    model.hang_forever = args.hang
    if args.log:
        log = open(args.log, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
        original = model.respond

        def logged(path: str, body: dict[str, Any], fault: str | None) -> dict[str, Any]:
            payload = original(path, body, fault)
            if fault != "no_choices":
                log.write(json.dumps({"key": body_key(body)}) + "\n")
            return payload

        model.respond = logged  # type: ignore[method-assign]
    server, url = serve(model)
    print(url, flush=True)
    try:
        threading.Event().wait()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
