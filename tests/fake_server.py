"""A small OpenAI-protocol HTTP server for tests: real sockets, real JSON, a toy "model" that does arithmetic.

The model reads `What is <expr>?` from the prompt. It needs a per-(seed, problem) number of reasoning
tokens (one token = one word here) to get the answer right: a forced answer after fewer tokens is a
seeded guess, so accuracy rises with the budget exactly like a real model's, but deterministically.
It counts every request, so tests can assert how many were sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EXPR = re.compile(r"What is ([0-9+\-* ]+)\?")


def _h(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:4], "big")


def _solve(prompt: str) -> int | None:
    m = EXPR.search(prompt)
    return eval(m.group(1)) if m else None


class FakeModel:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def needed(self, seed: int, prompt: str) -> int:
        return 8 + _h(seed, prompt) % 40  # 8..47 reasoning tokens to solve it

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt, seed, max_tokens = body["prompt"], body.get("seed", 0), body.get("max_tokens") or 256
        answer = _solve(prompt)
        if prompt.endswith("\\boxed{"):  # forced answer: right only if the reasoning was long enough
            head = prompt.split("<|im_start|>assistant\n", 1)
            reasoning = head[1] if len(head) > 1 else ""
            base = head[0] + "<|im_start|>assistant\n"
            ok = len(reasoning.split()) >= self.needed(seed, base)
            value = answer if ok else _h("guess", seed, prompt) % 50
            return self._choice(f"{value}}}", "stop", 2)
        need = self.needed(seed, prompt)
        if max_tokens < need:
            return self._choice(" ".join(["step"] * max_tokens), "length", max_tokens)
        words = ["step"] * (need - 2) + [f"\\boxed{{{answer}}}"]
        return self._choice(" ".join(words), "stop", need - 1)

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        content = body["messages"][-1]["content"]
        answer = _solve(content)
        seed = body.get("seed", 0)
        ok = _h("chat", seed, content) % 2 == 0
        text = f"The answer is {answer if ok else answer + 1}."
        return {
            "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                      "completion_tokens_details": {"reasoning_tokens": 3}},
        }

    @staticmethod
    def _choice(text: str, finish: str, tokens: int) -> dict[str, Any]:
        return {
            "id": "cmpl-test", "object": "text_completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens},
        }


def serve(model: FakeModel) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with model.lock:
                model.requests.append({"path": self.path, "body": body,
                                       "authorization": self.headers.get("Authorization")})
            if self.path.endswith("/chat/completions"):
                self._send(200, model.chat(body))
            elif self.path.endswith("/completions"):
                self._send(200, model.completion(body))
            else:
                self._send(404, {"error": {"message": "not found"}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"
