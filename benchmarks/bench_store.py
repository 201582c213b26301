"""The response store at GPU-fleet size: a forcing run on an instant local server, each stage's peak memory
and wall time, the replay; and the open of a store of a million responses (benchmarks/README.md, "The
response store at scale").

    python benchmarks/bench_store.py run --problems 300 --dir BENCH/300     # the forcing run + replay
    python benchmarks/bench_store.py million --dir BENCH/1m                   # open 1,000,000 responses
    python benchmarks/bench_store.py dvc --dir BENCH/dvc                      # push, 10% more, push again

The run: budget forcing (`chatml-think`, no Wait) at 5 budgets 256...4,096 with 4 samples each and a pool
of 32 at 4,096, against a local OpenAI-protocol server (its own process) that answers at once: a thinking
request gets exactly max_tokens words of text (drawn from a fixed vocabulary, different per request), a
forced answer `42}`. Every stage runs as its own `harness` process under /usr/bin/time -v; the replay is
`HARNESS_NO_REQUESTS=1 harness run` after deleting outputs/, and its outputs are compared byte for byte
with the live run's. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

WORDS = ["the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "with", "be", "on", "by", "this", "are", "we", "so", "then", "let", "x", "y", "n", "sum", "two", "three", "number", "value", "equation", "solve", "check", "case", "since", "therefore", "thus", "gives", "total", "factor", "prime", "square", "root", "term", "side", "angle", "area", "wait", "hmm", "compute", "now", "next", "step", "first", "second"]
BUDGETS = [256, 512, 1024, 2048, 4096]
CUE = "\n\nFinal answer: \\boxed{"


def _text_pool(seed: int = 0, words: int = 200_000) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(WORDS) for _ in range(words)]


def _instant_server(port_queue: multiprocessing.Queue) -> None:
    from aiohttp import web

    pool = _text_pool()

    def text_for(body: dict[str, Any]) -> tuple[str, str, int]:
        prompt, n = body.get("prompt", ""), int(body.get("max_tokens") or 16)
        if prompt.endswith("\\boxed{"):
            return "42}", "stop", 2
        start = int.from_bytes(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()[:4], "big")
        start %= len(pool) - n
        return " ".join(pool[start:start + n]), "length", n

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        text, finish, tokens = text_for(body)
        return web.json_response({
            "id": "cmpl-bench", "object": "text_completion", "created": 0, "model": body.get("model"),
            "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": len(body.get("prompt", "")) // 4, "completion_tokens": tokens,
                      "total_tokens": len(body.get("prompt", "")) // 4 + tokens}})

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "bench", "object": "model"}]})

    async def start() -> None:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/v1/completions", completions)
        app.router.add_get("/v1/models", models)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(start())


def start_server() -> tuple[multiprocessing.Process, str]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=_instant_server, args=(queue,), daemon=True)
    server.start()
    return server, f"http://127.0.0.1:{queue.get(timeout=60)}/v1"


def make_project(root: Path, problems: int, url: str) -> None:
    """A run directory: params.yaml and a local dataset of integer problems."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "problems.jsonl", "w") as fh:
        fh.writelines(json.dumps({"id": f"p{i}", "problem": f"What is {i} + {2 * i}?", "answer": str(3 * i)}) + "\n" for i in range(problems))
    params = {
        "model": {"base_url": url, "name": "bench", "chat_template": "chatml-think", "max_retries": 2},
        "data": {"source": "problems.jsonl", "answer_type": "integer"},
        "budgets": {"method": "forcing", "requested": BUDGETS, "wait": False, "answer_cue": CUE},
        "calibrate": {"problems": 30},
        "sampling": {"samples": 4, "vote_samples": 32, "concurrency": 64, "temperature": 0.7},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run one harness command under /usr/bin/time -v: its peak RSS (GB) and wall time (s)."""
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], check=False, cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]
    wall = re.search(r"Elapsed \(wall clock\) time .*: ([\d:.]+)", proc.stderr).group(1)  # type: ignore[union-attr]
    seconds = sum(float(part) * 60 ** i for i, part in enumerate(reversed(wall.split(":"))))
    return {"rss_gb": round(rss_kb / 1e6, 3), "wall_s": round(seconds, 1)}


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "outputs").rglob("*")) if p.is_file()}


def store_size(root: Path) -> tuple[int, int]:
    shards = sorted((root / "store").glob("*.jsonl"))
    return sum(p.stat().st_size for p in shards), sum(p.read_bytes().count(b"\n") for p in shards)


def bench_run(root: Path, problems: int) -> dict[str, Any]:
    harness = shutil.which("harness") or sys.exit("harness is not on PATH (activate .nox/replay)")
    server, url = start_server()
    try:
        if root.exists():
            shutil.rmtree(root)
        make_project(root, problems, url)
        stages = {}
        for stage in ("fetch", "calibrate", "sample", "vote", "plot", "report"):
            stages[stage] = timed([harness, stage], root)
            print(stage, stages[stage], flush=True)
    finally:
        server.kill()
    size, responses = store_size(root)
    live = digests(root)
    shutil.rmtree(root / "outputs")
    replay = timed([harness, "run"], root, {"HARNESS_NO_REQUESTS": "1"})
    same = digests(root) == live
    result = {"problems": problems, "samples": problems * (4 * 4 + 32), "responses": responses,
              "store_gb": round(size / 1e9, 3), "stages": stages, "replay": replay, "replay_identical": same}
    print(json.dumps(result), flush=True)
    return result


def write_million(root: Path, count: int, text_bytes: int) -> None:
    """`count` records written the way the store writes them (canonical lines, one shard per 100,000)."""
    from harness.requests.store import ResponseStore

    store_dir = root / "store"
    if store_dir.exists():
        shutil.rmtree(store_dir)
    store_dir.mkdir(parents=True)
    filler = "w" * text_bytes
    for shard in range(0, count, 100_000):
        lines = []
        for i in range(shard, min(count, shard + 100_000)):
            request = {"endpoint": "completions", "model": "bench", "prompt": f"problem {i}", "max_tokens": 256}
            lines.append(ResponseStore._line_for(request, {"text": f"{i} {filler}", "finish_reason": "length"}))
        (store_dir / f"shard{shard // 100_000:02d}.jsonl").write_bytes(b"".join(lines))


def open_once(store_dir: Path, readonly: bool) -> dict[str, float]:
    code = ("import time, resource; t = time.perf_counter(); "
            "from harness.requests.store import ResponseStore, request_key; "
            f"s = ResponseStore({str(store_dir)!r}, 'open', readonly={readonly}); "
            "k = request_key({'endpoint': 'completions', 'model': 'bench', 'prompt': 'problem 123456', 'max_tokens': 256}); "
            "assert k in s and s.get(k)['response']['text'].startswith('123456 '); s.close(); "
            "print(len(s), time.perf_counter() - t)")
    out = timed([sys.executable, "-c", code], store_dir)
    return out


def bench_million(root: Path, count: int, text_bytes: int) -> dict[str, Any]:
    started = time.perf_counter()
    write_million(root, count, text_bytes)
    written = time.perf_counter() - started
    store_dir = root / "store"
    shutil.rmtree(store_dir / ".index", ignore_errors=True)
    size = sum(p.stat().st_size for p in store_dir.glob("*.jsonl"))
    first = open_once(store_dir, readonly=False)  # no index yet: every shard is scanned, indexes are saved
    again = open_once(store_dir, readonly=True)  # from the indexes
    result = {"responses": count, "store_gb": round(size / 1e9, 3), "write_s": round(written, 1),
              "open_without_index": first, "open_with_index": again}
    print(json.dumps(result), flush=True)
    return result


def _fill(store_dir: Path, first: int, count: int, text_bytes: int, shard_mb: float) -> None:
    """`count` responses through ResponseStore.append_many in one writer process (group commits of 500)."""
    code = ("import sys; from harness.requests.store import ResponseStore; "
            f"s = ResponseStore({str(store_dir)!r}, 'sample'); "
            f"[s.append_many([({{'endpoint': 'completions', 'model': 'bench', 'prompt': f'problem {{i}}'}}, "
            f"{{'text': f'{{i}} ' + 'w' * {text_bytes}, 'finish_reason': 'length'}}) for i in range(b, min(b + 500, {first + count}))]) "
            f"for b in range({first}, {first + count}, 500)]; s.close()")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "HARNESS_SHARD_MB": str(shard_mb)})


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_dvc(root: Path, count: int, text_bytes: int, shard_mb: float) -> dict[str, Any]:
    """A store DVC-tracked (`dvc add`) and pushed to a local-directory remote; 10% more responses; how many
    bytes the second push uploads."""
    if root.exists():
        shutil.rmtree(root)
    repo, remote = root / "repo", root / "remote"
    repo.mkdir(parents=True)
    remote.mkdir()

    def sh(*cmd: str) -> None:
        subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True)

    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    (repo / ".dvcignore").write_text("# the store's local state: never data\n**/.index\n**/.claims\n**/.batches\n**/.lock\n")
    sh("dvc", "remote", "add", "-d", "local", str(remote))
    _fill(repo / "bigstore", 0, count, text_bytes, shard_mb)
    sh("dvc", "add", "bigstore")
    sh("dvc", "push", "-q")
    first = _dir_bytes(remote)
    _fill(repo / "bigstore", count, count // 10, text_bytes, shard_mb)
    sh("dvc", "add", "bigstore")
    sh("dvc", "push", "-q")
    second = _dir_bytes(remote) - first
    store = sum(p.stat().st_size for p in (repo / "bigstore").glob("*.jsonl"))
    result = {"responses": count, "more": count // 10, "shard_mb": shard_mb, "shards": len(list((repo / "bigstore").glob("*.jsonl"))),
              "store_mb": round(store / 1e6, 1), "first_push_mb": round(first / 1e6, 1),
              "second_push_mb": round(second / 1e6, 1), "second_push_share": round(second / store, 3)}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    run = sub.add_parser("run")
    run.add_argument("--problems", type=int, default=300)
    run.add_argument("--dir", type=Path, required=True)
    million = sub.add_parser("million")
    million.add_argument("--count", type=int, default=1_000_000)
    million.add_argument("--text-bytes", type=int, default=200)
    million.add_argument("--dir", type=Path, required=True)
    dvc = sub.add_parser("dvc")
    dvc.add_argument("--count", type=int, default=20_000)
    dvc.add_argument("--text-bytes", type=int, default=20_000)
    dvc.add_argument("--shard-mb", type=float, default=32)
    dvc.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    if args.what == "dvc":
        bench_dvc(args.dir, args.count, args.text_bytes, args.shard_mb)
    elif args.what == "run":
        bench_run(args.dir, args.problems)
    else:
        bench_million(args.dir, args.count, args.text_bytes)


if __name__ == "__main__":
    main()
