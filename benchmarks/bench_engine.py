"""Sampling-engine throughput against its ceilings (issue: "never loses or re-pays a response").

1. requests/s through a zero-latency local OpenAI-protocol server at concurrency 64: the harness
   (SDK + retries + fsync'd store) vs. the same server driven by a bare aiohttp loop. Target >= 90%.
2. tokens/s of a forcing run against the embedded llama.cpp server (concurrency 1) vs. the very same
   request bodies sent sequentially by a bare loop. Target >= 95%: the harness must never idle the model.

3. requests/s over several zero-latency replicas (`model.base_url` as a list, each its own process): does
   one harness process keep a fleet busy, or is the harness the bottleneck? (docs/scale.md)
4. requests/s of batch mode (`sampling.mode: batch`) against tests/fake_batch.py: building the JSONL,
   upload, polling, download and storing every answer, end to end.

Run: python benchmarks/bench_engine.py [--requests 3000] [--skip-embedded] [--replicas 4] [--batch 20000]
Writes benchmarks/results-engine.json and prints a summary; numbers are written down in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.params import Params
from harness.requests.engine import collect
from harness.servers.embedded import embedded_server
from harness.stages.sample import plan

CHAT = {
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "42"}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21},
}


def _zero_latency_server(port_queue: multiprocessing.Queue) -> None:
    body = json.dumps(CHAT).encode()

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_get("/v1/models", models)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(start())


def _start_zero_latency_server() -> tuple[multiprocessing.Process, str]:
    """A zero-latency server in its own process (so its event loop never competes with the harness's),
    and its base URL once it listens."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=_zero_latency_server, args=(queue,), daemon=True)
    server.start()
    return server, f"http://127.0.0.1:{queue.get(timeout=30)}/v1"


def _params(base_url: str | list[str], method: str, budget: int, concurrency: int, samples: int,
            **sampling: Any) -> Params:
    return Params.model_validate({
        "model": {"base_url": base_url, "name": "bench", "max_retries": 2},
        "budgets": {"method": method, "requested": [budget]},
        "sampling": {"samples": samples, "concurrency": concurrency, **sampling},
    })


def _problems(n: int) -> list[dict[str, str]]:
    return [{"id": f"b{i}", "problem": f"Compute {i} + {2 * i}.", "answer": str(3 * i)} for i in range(n)]


async def _bare_loop(url: str, bodies: list[dict[str, Any]], concurrency: int, path: str) -> float:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                async with session.post(f"{url}{path}", json=body) as resp:
                    await resp.json()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


def _harness_run(params: Params, problems: list[dict[str, str]], workdir: Path) -> float:
    os.chdir(workdir)
    jobs = plan(params, problems, params.pool_size)
    start = time.perf_counter()
    collect(params, jobs, shard="bench", desc="bench")
    return time.perf_counter() - start


def _stored_bodies(workdir: Path) -> list[dict[str, Any]]:
    bodies = []
    for line in (workdir / "store" / "bench.jsonl").read_text().splitlines():
        request = json.loads(line)["request"]
        bodies.append({k: v for k, v in request.items() if k != "endpoint"})
    return bodies


def bench_requests(n: int, concurrency: int = 64) -> dict[str, float]:
    server, url = _start_zero_latency_server()
    try:
        samples = 8
        params = _params(url, "prompt", 16, concurrency, samples)
        with tempfile.TemporaryDirectory() as tmp:
            harness_s = _harness_run(params, _problems(n // samples), Path(tmp))
            bodies = _stored_bodies(Path(tmp))
        bare_s = asyncio.run(_bare_loop(url, bodies, concurrency, "/chat/completions"))
    finally:
        server.terminate()
    result = {"requests": len(bodies), "concurrency": concurrency,
              "harness_req_per_s": len(bodies) / harness_s, "bare_req_per_s": len(bodies) / bare_s}
    result["ratio"] = result["harness_req_per_s"] / result["bare_req_per_s"]
    return result


def bench_replicas(n: int, replicas: int, concurrency: int = 64) -> dict[str, float]:
    """One harness process spreading `n` requests over `replicas` zero-latency servers (one process each)."""
    servers, urls = [], []
    for _ in range(replicas):
        server, url = _start_zero_latency_server()
        servers.append(server)
        urls.append(url)
    try:
        samples = 8
        params = _params(urls, "prompt", 16, concurrency, samples)
        with tempfile.TemporaryDirectory() as tmp:
            seconds = _harness_run(params, _problems(n // samples), Path(tmp))
    finally:
        for server in servers:
            server.terminate()
    return {"requests": n, "replicas": replicas, "concurrency_per_replica": concurrency,
            "harness_req_per_s": n / seconds}


def bench_batch(n: int) -> dict[str, float]:
    """Batch mode end to end against the protocol-faithful fake (tests/fake_batch.py): one forcing round
    trip = two batches (reasoning, then the forced answers) of `n / 2` samples each."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fake_batch import BatchAPI
    from fake_server import FakeModel, serve

    model = FakeModel()
    model.batch = BatchAPI(model)
    server, url = serve(model)
    try:
        params = _params(url, "forcing", 4, 1, 1, mode="batch", batch_poll_s=0.01)
        with tempfile.TemporaryDirectory() as tmp:
            seconds = _harness_run(params, _problems(n // 2), Path(tmp))
            stored = sum(1 for _ in (Path(tmp) / "store" / "bench.jsonl").open())
    finally:
        server.shutdown()
    return {"requests": stored, "batches": model.batch.created, "batch_req_per_s": stored / seconds}


def bench_harness_only(n: int, concurrency: int = 64) -> dict[str, float]:
    """The harness's own cost per request, HTTP and SDK taken out: `Client._send` answers from memory.

    What is left is the store walk, request building and hashing, classification, grading, the group
    commit (fsync) and the progress bar: the floor under any transport, SDK or hand-written.
    """
    from harness.requests import client as client_module
    from harness.requests.client import _record

    async def instant(self: Any, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return _record([{"text": "42", "finish_reason": "stop", "refusal": None}], None)

    server, url = _start_zero_latency_server()  # only for the start-up probe of the endpoint
    original = client_module.Client._send
    client_module.Client._send = instant  # type: ignore[method-assign]
    try:
        samples = 8
        params = _params(url, "prompt", 16, concurrency, samples)
        with tempfile.TemporaryDirectory() as tmp:
            seconds = _harness_run(params, _problems(n // samples), Path(tmp))
    finally:
        client_module.Client._send = original  # type: ignore[method-assign]
        server.terminate()
    return {"requests": n, "harness_only_req_per_s": n / seconds, "ms_per_request": 1000 * seconds / n}


def bench_embedded(problems: int, budget: int) -> dict[str, float]:
    with embedded_server() as url, tempfile.TemporaryDirectory() as tmp:
        params = _params(url, "forcing", budget, 1, 2)
        params = params.model_copy(update={"model": params.model.model_copy(update={"name": "embedded"})})
        harness_s = _harness_run(params, _problems(problems), Path(tmp))
        records = [json.loads(line) for line in (Path(tmp) / "store" / "bench.jsonl").read_text().splitlines()]
        tokens = sum(r["response"]["completion_tokens"] for r in records)
        bodies = [{k: v for k, v in r["request"].items() if k != "endpoint"} for r in records]

        async def sequential() -> tuple[float, int]:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
                start, got = time.perf_counter(), 0
                for body in bodies:
                    async with session.post(f"{url}/completions", json=body) as resp:
                        got += (await resp.json())["usage"]["completion_tokens"]
                return time.perf_counter() - start, got

        bare_s, bare_tokens = asyncio.run(sequential())
    result = {"requests": len(bodies), "budget": budget,
              "harness_tok_per_s": tokens / harness_s, "bare_tok_per_s": bare_tokens / bare_s}
    result["ratio"] = result["harness_tok_per_s"] / result["bare_tok_per_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--embedded-problems", type=int, default=6)
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--replicas", type=int, default=0, help="also spread the requests over N replicas")
    parser.add_argument("--batch", type=int, default=0, help="also run N requests in batch mode")
    args = parser.parse_args()
    results: dict[str, Any] = {"requests_per_s": bench_requests(args.requests)}
    print(json.dumps(results["requests_per_s"], indent=2))
    results["harness_only"] = bench_harness_only(args.requests)
    print(json.dumps(results["harness_only"], indent=2))
    if args.replicas:
        results["replicas"] = bench_replicas(args.requests, args.replicas)
        print(json.dumps(results["replicas"], indent=2))
    if args.batch:
        results["batch"] = bench_batch(args.batch)
        print(json.dumps(results["batch"], indent=2))
    if not args.skip_embedded:
        results["embedded_tokens_per_s"] = bench_embedded(args.embedded_problems, args.budget)
        print(json.dumps(results["embedded_tokens_per_s"], indent=2))
    (ROOT / "benchmarks" / "results-engine.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
