"""The response store at GPU-fleet size: a forcing run on an instant local server, each stage's peak memory
and wall time, the replay; and the open of a store of a million responses (benchmarks/README.md, "The
response store at scale").

    python benchmarks/bench_store.py run --problems 300 --dir BENCH/300     # the forcing run + replay
    python benchmarks/bench_store.py million --dir BENCH/1m                   # open 1,000,000 responses
    python benchmarks/bench_store.py dvc --dir BENCH/dvc                      # push, 10% more, push again
    python benchmarks/bench_store.py big --run BENCH/1200 --gb 20             # that run replayed from a 20 GB store
    python benchmarks/bench_store.py per-sample --budget 1024 --dir BENCH/1k  # bytes and memory per 1,000 samples

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


def make_project(root: Path, problems: int, url: str, budgets: list[int] | None = None, samples: int = 4,
                 vote_samples: int = 32) -> None:
    """A run directory: params.yaml and a local dataset of integer problems."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "problems.jsonl", "w") as fh:
        fh.writelines(json.dumps({"id": f"p{i}", "problem": f"What is {i} + {2 * i}?", "answer": str(3 * i)}) + "\n" for i in range(problems))
    params = {
        "model": {"base_url": url, "name": "bench", "chat_template": "chatml-think", "max_retries": 2},
        "data": {"source": "problems.jsonl", "answer_type": "integer"},
        "budgets": {"method": "forcing", "requested": budgets or BUDGETS, "wait": False, "answer_cue": CUE},
        "calibrate": {"problems": 30},
        "sampling": {"samples": samples, "vote_samples": vote_samples, "concurrency": 64, "temperature": 0.7},
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


def digests(root: Path, outputs: str = "outputs") -> dict[str, str]:
    return {str(p.relative_to(root / outputs)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / outputs).rglob("*")) if p.is_file()}


def store_size(root: Path) -> dict[str, Any]:
    """The store on disk, as JSON lines (a sealed shard's records before compression), and its records."""
    from harness.requests.store import count_records, shard_files, store_summary

    shards = shard_files(root / "store")
    return {"disk": sum(p.stat().st_size for p in shards), "lines": store_summary(root / "store")["bytes"],
            "responses": count_records(root / "store"), "shards": len(shards),
            "sealed": sum(p.name.endswith(".gz") for p in shards)}


def bench_run(root: Path, problems: int, budgets: list[int] | None = None, samples: int = 4,
              vote_samples: int = 32) -> dict[str, Any]:
    harness = shutil.which("harness") or sys.exit("harness is not on PATH (activate .nox/replay)")
    server, url = start_server()
    try:
        if root.exists():
            shutil.rmtree(root)
        make_project(root, problems, url, budgets, samples, vote_samples)
        stages = {}
        for stage in ("fetch", "calibrate", "sample", "vote", "plot", "report"):
            stages[stage] = timed([harness, stage], root)
            print(stage, stages[stage], flush=True)
    finally:
        server.kill()
    size = store_size(root)
    live = digests(root)
    shutil.copytree(root / "outputs", root / "outputs.live")
    shutil.rmtree(root / "outputs")
    replay = timed([harness, "run"], root, {"HARNESS_NO_REQUESTS": "1"})
    same = digests(root) == live
    per_problem = samples * (len(budgets or BUDGETS) - 1) + max(samples, vote_samples)
    result = {"problems": problems, "samples": problems * per_problem, "responses": size["responses"],
              "store_gb": round(size["disk"] / 1e9, 3), "store_json_lines_gb": round(size["lines"] / 1e9, 3),
              "shards": size["shards"], "sealed_shards": size["sealed"], "stages": stages, "replay": replay,
              "replay_identical": same}
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
    from harness.requests.store import shard_files

    store = sum(p.stat().st_size for p in shard_files(repo / "bigstore"))
    result = {"responses": count, "more": count // 10, "shard_mb": shard_mb, "shards": len(shard_files(repo / "bigstore")),
              "store_mb": round(store / 1e6, 1), "first_push_mb": round(first / 1e6, 1),
              "second_push_mb": round(second / 1e6, 1), "second_push_share": round(second / store, 3)}
    print(json.dumps(result), flush=True)
    return result


def bench_big(run: Path, gb: float, text_bytes: int) -> dict[str, Any]:
    """A finished `run` (its outputs are the live run's) replayed from its store grown past `gb` GB with
    other responses: another run's forced samples (a thinking response of `text_bytes` and an answer
    request repeating it), written as JSON lines (HARNESS_SEAL=0) by ResponseStore itself, so every shard
    has its index. The replay reads only its own run's records; memory is set by the count of responses."""
    harness = shutil.which("harness") or sys.exit("harness is not on PATH (activate .nox/replay)")
    store = run / "store"
    live = run / "outputs.live"
    if not live.is_dir():
        sys.exit(f"{live}: no live outputs; run `bench_store.py run --dir {run}` first")
    started = time.perf_counter()
    have = store_size(run)["disk"]
    pairs = max(0, int((gb * 1e9 - have) / (2 * text_bytes + 600)) + 1)
    code = ("import sys, random; from harness.requests.store import ResponseStore; "
            f"s = ResponseStore({str(store)!r}, 'other'); rng = random.Random(1); words = {WORDS!r}; "
            "pool = ' '.join(rng.choice(words) for _ in range(400000)); "
            f"n = {text_bytes}\n"
            f"for b in range(0, {pairs}, 50):\n"
            "    batch = []\n"
            f"    for i in range(b, min(b + 50, {pairs})):\n"
            "        start = (i * 7919) % (len(pool) - n); thought = pool[start:start + n]\n"
            "        ask = {'endpoint': 'completions', 'model': 'other', 'prompt': f'problem {i}', 'max_tokens': 10240}\n"
            "        batch.append((ask, {'text': thought, 'finish_reason': 'length'}))\n"
            "        batch.append(({**ask, 'prompt': f'problem {i}' + thought + ' Final answer: ', 'max_tokens': 32}, "
            "{'text': '42}', 'finish_reason': 'stop'}))\n"
            "    s.append_many(batch)\n"
            "s.close()\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "HARNESS_SEAL": "0"})
    filled = time.perf_counter() - started
    size = store_size(run)
    shutil.rmtree(run / "outputs", ignore_errors=True)
    replay = timed([harness, "run"], run, {"HARNESS_NO_REQUESTS": "1"})
    now, then = digests(run), digests(run, live.name)
    others = [name for name in then if name != "report.html"]
    result = {"store_gb": round(size["disk"] / 1e9, 2), "store_json_lines_gb": round(size["lines"] / 1e9, 2),
              "responses": size["responses"], "shards": size["shards"], "filled_s": round(filled, 1),
              "replay": replay, "replay_identical_but_report": all(now.get(n) == then[n] for n in others),
              # the report's provenance counts the store it read, which now holds the other responses too
              "report_identical_but_store_provenance": _page_sans_store(run / "outputs" / "report.html")
              == _page_sans_store(live / "report.html")}
    print(json.dumps(result), flush=True)
    return result


def _page_sans_store(page: Path) -> tuple[str, Any]:
    """A report page with its index's store_* provenance taken out: everything the run's samples decide."""
    text = page.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="report-index">(.*?)</script>', text, re.DOTALL)
    if found is None:
        return text, None
    index = json.loads(found.group(1))
    for run in index["runs"]:
        run["provenance"] = {k: v for k, v in run["provenance"].items() if not k.startswith("store_")}
    return text[:found.start()] + text[found.end():], index


def bench_per_sample(root: Path, budget: int, problems: int, samples: int) -> dict[str, Any]:
    """Bytes and memory per 1,000 forced samples at one budget: the run at `problems` and at 4x as many
    (the difference is what 1,000 more samples cost), the store measured as JSON lines and sealed."""
    harness = shutil.which("harness") or sys.exit("harness is not on PATH (activate .nox/replay)")
    sizes = {}
    for n in (problems, 4 * problems):
        result = bench_run(root / str(n), n, [budget], samples, samples)
        subprocess.run([harness, "store", "seal", "--all"], cwd=root / str(n), check=True, capture_output=True)
        sealed = store_size(root / str(n))
        sizes[n] = {**result, "sealed_gb": round(sealed["disk"] / 1e9, 3)}
    small, big = sizes[problems], sizes[4 * problems]
    more = (big["samples"] - small["samples"]) / 1000
    per = {"budget": budget, "samples": [small["samples"], big["samples"]],
           "json_lines_mb_per_1000": round((big["store_json_lines_gb"] - small["store_json_lines_gb"]) * 1e3 / more, 1),
           "sealed_mb_per_1000": round((big["sealed_gb"] - small["sealed_gb"]) * 1e3 / more, 1),
           "rss_mb_per_1000": {stage: round((big["stages"][stage]["rss_gb"] - small["stages"][stage]["rss_gb"]) * 1e3
                                            / more, 1) for stage in big["stages"]},
           "replay_rss_mb_per_1000": round((big["replay"]["rss_gb"] - small["replay"]["rss_gb"]) * 1e3 / more, 1),
           "peak_rss_gb": {n: max([v["rss_gb"] for v in sizes[n]["stages"].values()] + [sizes[n]["replay"]["rss_gb"]])
                           for n in sizes}}
    print(json.dumps(per), flush=True)
    return per


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
    big = sub.add_parser("big")
    big.add_argument("--run", type=Path, required=True, help="a run directory `run` made (its outputs.live)")
    big.add_argument("--gb", type=float, default=20)
    big.add_argument("--text-bytes", type=int, default=60_000)
    per = sub.add_parser("per-sample")
    per.add_argument("--budget", type=int, required=True)
    per.add_argument("--problems", type=int, default=50)
    per.add_argument("--samples", type=int, default=8)
    per.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    if args.what == "big":
        bench_big(args.run, args.gb, args.text_bytes)
    elif args.what == "per-sample":
        bench_per_sample(args.dir, args.budget, args.problems, args.samples)
    elif args.what == "dvc":
        bench_dvc(args.dir, args.count, args.text_bytes, args.shard_mb)
    elif args.what == "run":
        bench_run(args.dir, args.problems)
    else:
        bench_million(args.dir, args.count, args.text_bytes)


if __name__ == "__main__":
    main()
