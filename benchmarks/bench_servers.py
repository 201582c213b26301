"""Aggregate throughput of the two embedded servers on the same requests: llama-cpp-python's Python server
(one request at a time) vs llama.cpp's llama-server with `--parallel` slots (continuous batching).

Why: the 1.5B reasoning run (examples/reasoning-1.5b) is hours of decoding on 2 cores; which server
the harness starts decides how many. The requests are the run's own: the first forcing request (the
`chatml-think` prompt, stop at </think>) of the example's first problems at one budget, sent by
`--concurrency` client threads. Throughput = completion tokens the servers report / wall time from the
first request to the last answer (prompt processing included, server start-up excluded). One run each.

    python benchmarks/bench_servers.py --server python --server llama-server --problems 8 --budget 128
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.params import FORCING_PROMPT
from harness.requests.chain import CHAT_TEMPLATES
from harness.servers.embedded import MODELS, SERVER_ENV, embedded_server, server_threads

REPO = Path(__file__).resolve().parents[1]
PROBLEMS = REPO / "examples" / "reasoning-1.5b" / "data" / "math500-levels345.jsonl"


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=1800) as resp:
        return json.loads(resp.read())


def bodies(model: str, problems: int, budget: int) -> list[dict]:
    template = CHAT_TEMPLATES["chatml-think"]
    rows = [json.loads(line) for line in PROBLEMS.read_text().splitlines()[:problems]]
    return [{"model": model, "prompt": template.render(FORCING_PROMPT.replace("{problem}", r["problem"])),
             "max_tokens": budget, "stop": ["</think>"], "temperature": 0.7, "top_p": 0.95, "seed": i}
            for i, r in enumerate(rows)]


def run(server: str, model_name: str, problems: int, budget: int, concurrency: int) -> dict:
    os.environ[SERVER_ENV] = server
    model = MODELS[model_name]
    requests = bodies(model.name, problems, budget)
    with embedded_server(model, slots=concurrency) as url:
        _post(f"{url}/completions", {**requests[0], "max_tokens": 1})  # warm: weights paged in
        start = time.monotonic()
        with ThreadPoolExecutor(concurrency) as pool:
            answers = list(pool.map(lambda body: _post(f"{url}/completions", body), requests))
        wall = time.monotonic() - start
    completion = sum(a["usage"]["completion_tokens"] for a in answers)
    prompt = sum(a["usage"]["prompt_tokens"] for a in answers)
    return {"server": server, "model": model.name, "requests": len(answers), "concurrency": concurrency,
            "threads": server_threads(), "completion_tokens": completion, "prompt_tokens": prompt,
            "wall_s": round(wall, 1), "tokens_per_s": round(completion / wall, 2),
            "load_avg_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", action="append", choices=["python", "llama-server"], required=True)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct", choices=list(MODELS))
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--budget", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    for server in args.server:
        print(json.dumps(run(server, args.model, args.problems, args.budget, args.concurrency)), flush=True)


if __name__ == "__main__":
    main()
