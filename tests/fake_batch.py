"""OpenAI's Files and Batch APIs, faithfully enough to test a batch client end to end (tests/fake_server.py
routes /v1/files and /v1/batches here when `FakeModel.batch` is set).

The protocol (platform.openai.com/docs/guides/batch, openai-python src/openai/types/batch*.py):
upload a JSONL file (multipart, `purpose=batch`), each line `{custom_id, method: POST, url, body}`; create a
batch from it (`input_file_id`, `endpoint`, `completion_window: 24h`, `metadata`); the batch goes
validating -> in_progress -> finalizing -> completed (or failed at validation, expired when the window
closes, cancelling -> cancelled); `request_counts` says how far it got; `output_file_id` holds one line per
answered request `{id, custom_id, response: {status_code, request_id, body}, error: null}`, and
`error_file_id` the requests that failed (a non-200 `response`) or never ran (`response: null, error:
{code: batch_expired, ...}`). Results come in any order. Only answered requests are billable.

Here the status moves one step each time a client looks (GET /v1/batches/{id}), so a test decides how long
a batch runs by how often it polls; `hold` keeps batches in progress (a batch that takes hours), `fail_next`
/ `expire_next` make the next batches fail validation / expire after answering half their requests, and
`error_rate` makes some requests fail with a 500 inside a completed batch.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import random
import threading
import time
from collections import Counter
from typing import Any

ENDPOINTS = ("/v1/chat/completions", "/v1/completions")
TERMINAL = ("completed", "failed", "expired", "cancelled")
NEXT = {"validating": "in_progress", "in_progress": "finalizing", "finalizing": "completed",
        "cancelling": "cancelled"}
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


def _error(status: int, message: str) -> tuple[int, bytes, str]:
    return status, json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode(), \
        "application/json"


class BatchAPI:
    def __init__(self, model: Any):
        self.model = model  # the FakeModel that answers each request
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.created = 0  # batches created (each one would be paid for)
        self.uploads = 0
        self.polls: Counter[str] = Counter()
        self.hold = False
        self.fail_next = 0
        self.expire_next = 0
        self.error_rate = 0.0
        self.seen: Counter[str] = Counter()  # custom_id -> times it was run (errors are drawn per attempt)
        self.lock = threading.RLock()

    # --- HTTP -------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, bytes, str]:
        route = path.split("?", 1)[0].rstrip("/")
        parts = route.split("/")  # ['', 'v1', 'files' | 'batches', id?, 'content' | 'cancel'?]
        with self.lock:
            if parts[2] == "files":
                if method == "POST" and len(parts) == 3:
                    return self._upload(headers, body)
                if method == "GET" and len(parts) == 5 and parts[4] == "content":
                    if parts[3] not in self.contents:
                        return _error(404, f"No such File object: {parts[3]}")
                    return 200, self.contents[parts[3]], "application/octet-stream"
                if method == "GET" and len(parts) == 4 and parts[3] in self.files:
                    return 200, json.dumps(self.files[parts[3]]).encode(), "application/json"
                return _error(404, f"No such File object: {parts[-1]}")
            if method == "POST" and len(parts) == 3:
                return self._create(json.loads(body))
            if method == "GET" and len(parts) == 3:
                return 200, json.dumps(self._list(path)).encode(), "application/json"
            batch = self.batches.get(parts[3]) if len(parts) > 3 else None
            if batch is None:
                return _error(404, f"No such Batch object: {parts[-1]}")
            if method == "GET" and len(parts) == 4:
                self.polls[batch["id"]] += 1
                self._advance(batch)
                return 200, json.dumps(batch).encode(), "application/json"
            if method == "POST" and len(parts) == 5 and parts[4] == "cancel":
                if batch["status"] not in TERMINAL:
                    batch.update(status="cancelling", cancelling_at=int(time.time()))
                return 200, json.dumps(batch).encode(), "application/json"
        return _error(404, "not found")

    def _upload(self, headers: Any, body: bytes) -> tuple[int, bytes, str]:
        head = f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        fields, content, filename = {}, b"", "upload"
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                content = part.get_payload(decode=True) or b""
                filename = part.get_filename() or filename
            else:
                fields[name] = part.get_payload(decode=True).decode()
        if fields.get("purpose") != "batch":
            return _error(400, f"purpose must be 'batch' for a batch input file, got {fields.get('purpose')!r}")
        self.uploads += 1
        file_id = f"file-{len(self.files) + 1:06d}"
        return 200, json.dumps(self._file(file_id, filename, content, "batch")).encode(), "application/json"

    def _file(self, file_id: str, filename: str, content: bytes, purpose: str) -> dict[str, Any]:
        self.contents[file_id] = content
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                               "filename": filename, "purpose": purpose, "status": "processed"}
        return self.files[file_id]

    def _create(self, body: dict[str, Any]) -> tuple[int, bytes, str]:
        if body.get("input_file_id") not in self.contents:
            return _error(400, f"No such File object: {body.get('input_file_id')}")
        if body.get("endpoint") not in ENDPOINTS:
            return _error(400, f"endpoint must be one of {', '.join(ENDPOINTS)}")
        if body.get("completion_window") != "24h":
            return _error(400, "completion_window must be '24h'")
        self.created += 1
        now = int(time.time())
        batch_id = f"batch_{self.created:06d}"
        batch = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                 "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "validating",
                 "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
                 "expires_at": now + 86400, "finalizing_at": None, "completed_at": None, "failed_at": None,
                 "expired_at": None, "cancelling_at": None, "cancelled_at": None,
                 "request_counts": {"total": 0, "completed": 0, "failed": 0},
                 "metadata": body.get("metadata")}
        self.batches[batch_id] = batch
        self.order.append(batch_id)
        return 200, json.dumps(batch).encode(), "application/json"

    def _list(self, path: str) -> dict[str, Any]:
        """Newest first, `after` a batch id and `limit`, as OpenAI's cursor pagination."""
        query = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&")) if "?" in path else {}
        ids = list(reversed(self.order))
        if "after" in query and query["after"] in ids:
            ids = ids[ids.index(query["after"]) + 1:]
        limit = int(query.get("limit", 20))
        page = [self.batches[i] for i in ids[:limit]]
        return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None, "has_more": len(ids) > limit}

    # --- the batch's life -------------------------------------------------------------------------------
    def _advance(self, batch: dict[str, Any]) -> None:
        status = batch["status"]
        now = int(time.time())
        if status in TERMINAL or (status == "in_progress" and self.hold):
            return
        if status == "validating":
            lines, problem = self._validate(batch)
            if problem is not None or self.fail_next:
                self.fail_next = max(0, self.fail_next - (problem is None))
                message = problem or "injected: the batch failed validation"
                batch.update(status="failed", failed_at=now,
                             errors={"object": "list", "data": [{"code": "invalid_request", "message": message,
                                                                 "param": None, "line": None}]})
                return
            batch["request_counts"]["total"] = len(lines)
            batch.update(status="in_progress", in_progress_at=now)
            return
        if status == "in_progress":
            if self.expire_next:
                self.expire_next -= 1
                self._run(batch, expire=True)
                batch.update(status="expired", expired_at=now)
                return
            batch.update(status="finalizing", finalizing_at=now)
            return
        if status == "finalizing":
            self._run(batch, expire=False)
            batch.update(status="completed", completed_at=now)
            return
        if status == "cancelling":
            self._run(batch, expire=True)
            batch.update(status="cancelled", cancelled_at=now)

    def _validate(self, batch: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        lines, ids, models = [], set(), set()
        for number, raw in enumerate(self.contents[batch["input_file_id"]].decode().splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                return [], f"line {number}: not valid JSON"
            if set(line) != {"custom_id", "method", "url", "body"} or line["method"] != "POST":
                return [], f"line {number}: needs exactly custom_id, method (POST), url and body"
            if line["url"] != batch["endpoint"]:
                return [], f"line {number}: url {line['url']} differs from the batch endpoint {batch['endpoint']}"
            if line["custom_id"] in ids:
                return [], f"line {number}: duplicate custom_id {line['custom_id']}"
            ids.add(line["custom_id"])
            models.add(line["body"].get("model"))
            lines.append(line)
        if len(models) > 1:
            return [], "all requests of a batch must use the same model"
        if not lines:
            return [], "the input file is empty"
        return lines, None

    def _run(self, batch: dict[str, Any], expire: bool) -> None:
        """Answer the requests (the first half only if the batch expires), write the output and error files."""
        lines, _ = self._validate(batch)
        answered = lines[: len(lines) // 2] if expire else lines
        out, err = [], []
        for n, line in enumerate(lines):
            request_id = f"req_{batch['id']}_{n}"
            entry: dict[str, Any] = {"id": f"batch_req_{batch['id']}_{n}", "custom_id": line["custom_id"]}
            if line not in answered:
                err.append({**entry, "response": None,
                            "error": {"code": "batch_expired", "message": EXPIRED_MESSAGE}})
                continue
            self.seen[line["custom_id"]] += 1
            rng = random.Random(f"{line['custom_id']}:{self.seen[line['custom_id']]}")
            rejected = self.model.rejection(line["body"])
            if rejected is not None:
                err.append({**entry, "response": {"status_code": 400, "request_id": request_id, "body": {
                    "error": {"message": rejected, "type": "invalid_request_error"}}}, "error": None})
            elif self.error_rate and rng.random() < self.error_rate:
                err.append({**entry, "response": {"status_code": 500, "request_id": request_id, "body": {
                    "error": {"message": "injected: the server had an error", "type": "server_error"}}},
                    "error": None})
            else:
                body = self.model.respond(line["url"], line["body"], None)
                self.model.bill(line["body"])
                out.append({**entry, "response": {"status_code": 200, "request_id": request_id, "body": body},
                            "error": None})
        random.Random(batch["id"]).shuffle(out)  # results come in any order: match them by custom_id
        counts = batch["request_counts"]
        counts.update(completed=len(out), failed=len(err) if not expire else len(err) - (len(lines) - len(answered)))
        if out:
            batch["output_file_id"] = self._file(f"file-{batch['id']}-output", "batch_output.jsonl", _jsonl(out),
                                                 "batch_output")["id"]
        if err:
            batch["error_file_id"] = self._file(f"file-{batch['id']}-errors", "batch_errors.jsonl", _jsonl(err),
                                                "batch_output")["id"]


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()
