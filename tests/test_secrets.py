"""The planted API key: after a full run with retries and failures, no file and no log line holds it.

The provider here is hostile on purpose. Besides transient failures (429, 500, a 200 that is not JSON)
that the client must retry, and requests that fail for good, it quotes the caller's Authorization header
back in its error messages and, for one prompt, in the completion text itself: the worst a misconfigured
proxy does. The key may therefore reach the harness from the network side; the test proves it never
leaves it: not in outputs, the store, params, temp or lock files, stdout/stderr, or any log record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fake_server import FakeModel

from harness.cli import main

KEY_ENV = "HARNESS_PLANTED_KEY"
SECRET = "sk-planted-" + hashlib.sha256(b"never write me").hexdigest()[:32]
# The SDK's own default variable: set to something else, it must be neither sent nor written.
DECOY = "sk-decoy-" + hashlib.sha256(b"not the configured variable").hexdigest()[:32]


class HostileProvider:
    """Answers like tests/fake_server.FakeModel, misbehaving by a fixed plan per request body.

    The plan is keyed by a hash of the body, so it is the same on every run; `attempts` counts how often
    each body was seen, so a transient fault hits only the first attempt.
    """

    def __init__(self) -> None:
        self.model = FakeModel()
        self.attempts: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.authorizations: set[str | None] = set()
        self.lock = threading.Lock()

    def plan(self, body: dict[str, Any], attempt: int) -> str | None:
        bucket = int(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(), 16) % 10
        if bucket == 0:
            return "500"  # every attempt: the sample fails after all retries
        if bucket == 1:
            return "400"  # not retryable: fails at once
        if attempt == 1:
            return {2: "429", 3: "500", 4: "not-json"}.get(bucket)  # transient: the retry succeeds
        return None

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        auth = handler.headers.get("Authorization")
        key = json.dumps(body, sort_keys=True)
        with self.lock:
            self.attempts[key] += 1
            attempt = self.attempts[key]
            self.authorizations.add(auth)
        fault = self.plan(body, attempt)
        if fault is not None:
            with self.lock:
                self.faults[fault] += 1
        echo = f"invalid request from {auth} (key {auth.removeprefix('Bearer ') if auth else None})"
        if fault in ("500", "400", "429"):
            payload = json.dumps({"error": {"message": echo, "type": "server_error", "code": fault}}).encode()
            handler.send_response(int(fault))
            handler.send_header("retry-after-ms", "1")  # keep the test fast; the client must honour it
        elif fault == "not-json":
            payload = f"<html>upstream error for {auth}</html>".encode()
            handler.send_response(200)
        else:
            if handler.path.endswith("/chat/completions"):
                response = self.model.chat(body)
            else:
                response = self.model.completion(body)
                text = response["choices"][0]["text"]
                if "What is 3 + 5?" in body["prompt"] and not body["prompt"].endswith("\\boxed{"):
                    # An echo inside a billable answer, boxed so it reaches the answer column too.
                    response["choices"][0]["text"] = f"{text} debug {auth} \\boxed{{{SECRET}}}"
            payload = json.dumps(response).encode()
            handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


@pytest.fixture
def hostile():
    provider = HostileProvider()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            data = json.dumps({"object": "list", "data": [{"id": "fake"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            provider.handle(self)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    provider.url = f"http://127.0.0.1:{server.server_address[1]}/v1"  # type: ignore[attr-defined]
    yield provider
    server.shutdown()
    server.server_close()


def _files_holding(root: Path, secret: str) -> list[str]:
    """Every file under root (hidden ones included) whose bytes contain the secret."""
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_planted_key_is_in_no_file_and_no_log_after_a_run_with_retries_and_failures(
    project, hostile, monkeypatch, capsys, caplog, tmp_path
):
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", DECOY)
    caplog.set_level(logging.DEBUG)  # the SDK's and httpx's debug records too
    project(hostile.url, model={"api_key_env": KEY_ENV, "max_retries": 2},
            sampling={"samples": 2, "vote_samples": 4, "concurrency": 4})

    assert main(["run"]) == 0
    out, err = capsys.readouterr()

    # The run really was hostile: the key went out as the bearer, and came back in every way planned.
    assert hostile.authorizations == {f"Bearer {SECRET}"}
    assert {"500", "400", "429", "not-json"} <= set(hostile.faults), hostile.faults
    assert max(hostile.attempts.values()) >= 2, "some requests must have been retried"
    samples = pd.read_csv("outputs/samples.csv")
    failed = samples[samples["error"].notna()]
    assert len(failed) > 0 and (samples["error"].isna()).sum() > 0, "need both failures and successes"
    assert failed["error"].str.contains("API key hidden").any(), "the echoed key was replaced, not dropped"

    # ...and the key is nowhere: not in any file the run wrote, nor in anything printed or logged.
    assert _files_holding(tmp_path, SECRET) == []
    assert SECRET not in out and SECRET not in err
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    assert SECRET not in caplog.text
    assert _files_holding(tmp_path, DECOY) == [] and DECOY not in caplog.text


def test_a_local_server_without_a_key_variable_never_gets_the_sdk_default_key(
    project, hostile, monkeypatch, tmp_path
):
    """The key comes from the variable named in params, or nowhere: OPENAI_API_KEY is not a fallback."""
    monkeypatch.setenv("OPENAI_API_KEY", DECOY)
    project(hostile.url, budgets={"requested": [64]}, sampling={"samples": 1, "vote_samples": 1})
    main(["run"])
    assert hostile.authorizations and all(DECOY not in (a or "") for a in hostile.authorizations)


def test_a_provider_rejecting_the_key_and_quoting_it_gets_it_hidden_from_the_user(
    project, monkeypatch, capsys, tmp_path
):
    """401 bodies quote the key (OpenAI's quotes part of it); whatever the run does next, it is hidden."""

    class Reject(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            data = json.dumps({"error": {"message": f"Incorrect API key provided: {SECRET}",
                                         "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Reject)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv(KEY_ENV, SECRET)
        project(f"http://127.0.0.1:{server.server_address[1]}/v1", model={"api_key_env": KEY_ENV},
                budgets={"requested": [8]}, sampling={"samples": 1, "vote_samples": 1})
        code = main(["run"])
    finally:
        server.shutdown()
        server.server_close()
    out, err = capsys.readouterr()
    assert code in (0, 2)  # each sample failed (kept as failed), or the run stopped on the bad key
    assert "401" in err + Path("outputs/samples.csv").read_text() if code == 0 else "401" in err
    assert SECRET not in out + err
    assert _files_holding(tmp_path, SECRET) == []
