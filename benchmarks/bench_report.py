"""The report at scale: a synthetic run of 30 problems x 10 budgets x 16 samples of ~5,000 tokens each
(4,800 samples, ~100 MB of text), then the file's size, the time `harness report` takes, and in headless
chromium the first paint, opening a cell and opening a sample; the same for every committed run; and past
the limit, the size where one file stops opening quickly (benchmarks/README.md, "The report").

    python benchmarks/bench_report.py                       # the synthetic run and the committed runs
    python benchmarks/bench_report.py --scale 4 --split     # 4x the samples, one file and split, side by side
    python benchmarks/bench_report.py --pad 4 16 64          # the synthetic page padded to 4x, 16x, 64x its size

The synthetic run is a real run directory: params.yaml (budget forcing with a think-tag template, Wait on,
pools of 16), a local dataset, a response store written by walking every sample's chain (`chain.walk`)
with a fetch that writes text instead of asking a model, then the real `harness sample` and `harness vote`
(HARNESS_NO_REQUESTS=1). Its text is a word-level Markov chain trained on the committed runs' own model
text, so it compresses like model text rather than like a repeated template: compression is what the
file size depends on.

Speed targets are checked here and printed, never asserted in the test suite (a shared machine is slow
for reasons of its own). Needs Debian's chromium (`apt-get install -y chromium`) and the lock's packages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from harness.params import load_params
from harness.requests.chain import Job, walk
from harness.requests.store import ResponseStore, request_key
from harness.stages.sample import plan

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
COMMITTED = ["", "examples/reasoning-1.5b", "examples/reasoning-1.5b/baseline", "examples/compute-optimal",
             "examples/think-tags/qwen3_wait", *(f"examples/embedded-methods/{m}" for m in
                                                 ("prompt", "cap", "forcing", "forcing_wait"))]
TARGETS = {"size_mb": 40.0, "generate_s": 60.0, "paint_ms": 2000.0, "cell_ms": 200.0}
CHARS_PER_TOKEN = 4  # English prose and LaTeX average about four characters per token


# ---- text that compresses like model text ----

def corpus_words() -> list[str]:
    """Every committed run's model text, as words (whitespace kept with the word that follows it)."""
    words: list[str] = []
    for shard in sorted(REPO.glob("**/store/*.jsonl")):
        if ".nox" in shard.parts:
            continue
        for line in shard.read_text(encoding="utf-8").splitlines():
            response = json.loads(line)["response"]
            for choice in response.get("choices", [response]):
                words += re.findall(r"\s*\S+", choice["text"])
    return words


class Markov:
    """Order-1 word chain: each next word drawn among the words that followed the current one."""

    def __init__(self, words: list[str], seed: int):
        self.vocab = sorted(set(words))
        ids = {w: i for i, w in enumerate(self.vocab)}
        following: dict[int, list[int]] = defaultdict(list)
        for a, b in pairwise(words):
            following[ids[a]].append(ids[b])
        self.next = [following.get(i) or [ids[words[0]]] for i in range(len(self.vocab))]
        self.rng = random.Random(seed)
        self.at = ids[words[0]]

    def text(self, chars: int) -> str:
        out, size, rng, nxt, vocab, at = [], 0, self.rng, self.next, self.vocab, self.at
        while size < chars:
            choices = nxt[at]
            at = choices[int(rng.random() * len(choices))]
            word = vocab[at].replace("</think>", "").replace("<think>", "")  # the harness writes the tags
            out.append(word)
            size += len(word)
        self.at = at
        return "".join(out)


# ---- a synthetic run: params, problems, a store the chain walks, the real stages ----

def make_run(root: Path, problems: int, budgets: list[int], samples: int, seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    golds = [rng.randint(10, 999) for _ in range(problems)]
    lines = [json.dumps({"id": f"synthetic-{i:03d}", "problem": f"Synthetic problem {i}: find the number whose "
                         f"digits are those of {gold} (a stand-in of MATH length).", "answer": str(gold)}) + "\n"
             for i, gold in enumerate(golds)]
    (root / "problems.jsonl").write_text("".join(lines), encoding="utf-8")
    params = {
        "model": {"base_url": "http://127.0.0.1:9/v1", "name": "synthetic-reasoner", "chat_template": "qwen3"},
        "data": {"source": "problems.jsonl", "answer_type": "integer"},
        "budgets": {"method": "forcing", "requested": budgets, "wait": True, "answer_tokens": 16},
        "sampling": {"samples": samples, "vote_samples": samples, "seed": 0, "temperature": 0.7},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    env = {**os.environ, "HARNESS_NO_REQUESTS": "1"}
    subprocess.run([sys.executable, "-m", "harness.cli", "fetch"], cwd=root, check=True, env=env)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        write_store(load_params("params.yaml"), golds, seed)
    finally:
        os.chdir(cwd)
    for stage in ("sample", "vote"):
        subprocess.run([sys.executable, "-m", "harness.cli", stage], cwd=root, check=True, env=env)
    return root


def write_store(params: Any, golds: list[int], seed: int) -> None:
    """Every planned sample's chain walked with a fetch that writes instead of asking: ~budget tokens of
    thinking (a quarter of the samples stop early once and are told "Wait"), then a forced answer whose
    chance of being right grows with the budget and differs by problem."""
    problems = [json.loads(line) for line in Path("outputs/problems.jsonl").read_text().splitlines()]
    jobs = plan(params, problems, params.pool_size)
    markov = Markov(corpus_words(), seed)
    rng = random.Random(seed + 1)
    skill = {p["id"]: rng.random() for p in problems}
    top = max(params.budgets.requested)
    pairs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    def respond(job: Job):
        async def fetch(request: dict[str, Any]) -> dict[str, Any]:
            budget = request["max_tokens"]
            if request["prompt"].endswith("\\boxed{"):  # the forced answer
                right = rng.random() < skill[job.problem_id] * (0.3 + 0.7 * int(job.budget) / top)
                gold = int(job.gold)
                answer = gold if right else rng.choice([gold + 1, gold - 10, gold * 2, rng.randint(1, 999)])
                response = {"text": f"{answer}}}", "finish_reason": "stop", "completion_tokens": 4}
            elif "\nWait," not in request["prompt"][-6:] and rng.random() < 0.25 and budget > 64:
                used = budget // 2  # stops early: the harness will insert a Wait cue
                response = {"text": markov.text(used * CHARS_PER_TOKEN), "finish_reason": "stop",
                            "completion_tokens": used}
            else:
                response = {"text": markov.text(budget * CHARS_PER_TOKEN), "finish_reason": "length",
                            "completion_tokens": budget}
            response.update({"prompt_tokens": 80, "latency_s": 1.0})
            pairs.setdefault(request_key(request), (request, response))
            return dict(response)
        return fetch

    for job in jobs:
        asyncio.run(walk(params, job, respond(job)))
    store = ResponseStore(Path("store"), "sample")
    items = list(pairs.values())
    for i in range(0, len(items), 500):
        store.append_many(items[i:i + 500])
    ResponseStore(Path("store"), "calibrate")  # the shard the report's DVC stage depends on, empty here


# ---- measurements ----

def generate(run: Path, out: Path, split: bool) -> dict[str, float]:
    """`harness report` as a user runs it: wall and CPU seconds (this process's children), the size."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness.cli", "report", str(run), "-o", str(out),
                    *(["--split"] if split else [])], check=True, env={**os.environ, "HARNESS_NO_REQUESTS": "1"},
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = os.times()
    files = out.with_name(out.stem + "_files")
    extra = sum(f.stat().st_size for f in files.glob("*")) if split and files.exists() else 0
    return {"generate_s": wall, "cpu_s": (after.children_user - before.children_user)
            + (after.children_system - before.children_system), "size_mb": out.stat().st_size / 1e6,
            "side_files_mb": extra / 1e6}


OPEN_CELL = """async ([p, b]) => {
  const scroll = document.getElementById("grid-scroll");
  const find = () => document.querySelector(`.cell.budget[data-p="${p}"][data-b="${b}"]`);
  while (!find()) { scroll.scrollTop += scroll.clientHeight / 2; await new Promise(r => setTimeout(r, 20)); }
  const cell = find();
  await new Promise(r => setTimeout(r, 50));
  const t0 = performance.now();
  cell.click();
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  const opened = performance.now() - t0;
  const row = document.querySelector(".sample-row");
  const t1 = performance.now();
  row.click();
  const box = document.getElementById("transcript");
  while (box.dataset.state !== "ready") await new Promise(r => setTimeout(r, 1));
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  return [opened, performance.now() - t1, document.querySelectorAll("#list-space .sample-row").length];
}"""


def in_browser(page_path: Path, cells: list[tuple[str, str]], repeats: int) -> dict[str, float]:
    """Median first contentful paint, grid drawn, and per cell: opening it (its sample list drawn) and
    opening its first sample (decoded, its transcript drawn), each in a fresh tab."""
    from playwright.sync_api import sync_playwright

    paint, grid, cell_ms, sample_ms = [], [], [], []
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                    viewport={"width": 1400, "height": 1000})
        for i in range(repeats):
            tab = ctx.new_page()
            tab.goto(page_path.as_uri(), wait_until="load")
            tab.wait_for_selector("html[data-ready=true]")
            marks = tab.evaluate("""async () => {  // a small page runs its script before the first paint
              const fcp = () => performance.getEntriesByName("first-contentful-paint")[0];
              while (!fcp()) await new Promise(r => requestAnimationFrame(r));
              return { paint: fcp().startTime, grid: performance.getEntriesByName("report-grid")[0].startTime }; }""")
            paint.append(marks["paint"])
            grid.append(marks["grid"])
            opened, sample, listed = tab.evaluate(OPEN_CELL, list(cells[i % len(cells)]))
            assert listed > 0
            cell_ms.append(opened)
            sample_ms.append(sample)
            tab.close()
        ctx.close()
    return {"paint_ms": statistics.median(paint), "grid_ms": statistics.median(grid),
            "cell_ms": statistics.median(cell_ms), "sample_ms": statistics.median(sample_ms),
            "cell_ms_max": max(cell_ms), "sample_ms_max": max(sample_ms)}


def padded(report: Path, factors: list[int]) -> None:
    """Where one file stops being quick: the synthetic page with its cells copied (under ids nothing asks
    for) to `factor` times its size, opened in chromium. The grid does not wait for the cells, but a cell
    can be opened only once the whole file is parsed (DOMContentLoaded)."""
    from playwright.sync_api import sync_playwright

    src = report.read_text(encoding="utf-8")
    cells = re.findall(r'<script type="application/octet-stream" id="[^"]+">[^<]*</script>\n', src)
    end = src.rindex("</body>")
    print("\n| page | MB | load event s | DOMContentLoaded ms | grid drawn ms |\n|---|---|---|---|---|")
    for factor in factors:
        pad = "".join(c.replace('id="cell-', f'id="pad{k}-') for k in range(factor - 1) for c in cells)
        page = report.with_name(f"padded-{factor}.html")
        page.write_text(src[:end] + pad + src[end:], encoding="utf-8")
        try:
            with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
                ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                            args=FLAGS)
                tab = ctx.new_page()
                start = time.perf_counter()
                tab.goto(page.as_uri(), wait_until="load", timeout=900_000)
                load = time.perf_counter() - start
                m = tab.evaluate("""() => ({
                  dcl: performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd,
                  grid: performance.getEntriesByName("report-grid")[0].startTime })""")
                ctx.close()
            print(f"| x{factor} | {page.stat().st_size / 1e6:.0f} | {load:.1f} | {m['dcl']:.0f} | {m['grid']:.0f} |",
                  flush=True)
        finally:
            page.unlink()


def some_cells(report: Path, count: int) -> list[tuple[str, str]]:
    """Cells spread over the grid (top, middle, bottom rows; every budget), from the page's own index."""
    html = report.read_text(encoding="utf-8")
    index = json.loads(re.search(r'id="report-index">(.*?)</script>', html, re.DOTALL).group(1))
    run = index["runs"][0]
    cells = [(run["problems"][c["p"]]["id"], run["budgets"][c["b"]]) for c in run["cells"]]
    step = max(1, len(cells) // count)
    return cells[::step][:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where the synthetic run lives (kept; default: a temp dir)")
    parser.add_argument("--scale", type=int, default=1, help="x the samples per pool (16 x scale)")
    parser.add_argument("--split", action="store_true", help="also build and open the split report")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-committed", action="store_true")
    parser.add_argument("--pad", type=int, nargs="+", metavar="FACTOR",
                        help="only: the synthetic page padded to FACTOR times its size, opened (load times)")
    args = parser.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="bench-report-"))
    run = base / f"synthetic-x{args.scale}"
    budgets = [512 + 1024 * i for i in range(10)]  # 512 ... 9,728: ~5,000 tokens per sample on average
    if not (run / "outputs" / "metrics.json").exists():
        started = time.perf_counter()
        make_run(run, 30, budgets, 16 * args.scale)
        print(f"synthetic run written in {time.perf_counter() - started:.0f} s: {run}", flush=True)
    text = sum(p.stat().st_size for p in (run / "store").glob("*.jsonl")) / 1e6
    print(f"store: {text:.0f} MB of JSON lines")
    if args.pad:
        page = run / "outputs" / "report.html"
        generate(run, page, False)
        padded(page, args.pad)
        return 0
    rows = []
    for split in ([False, True] if args.split else [False]):
        out = run / "outputs" / ("report_split.html" if split else "report.html")
        timing = [generate(run, out, split) for _ in range(max(1, args.repeats // 2))]
        built = {k: statistics.median(t[k] for t in timing) for k in timing[0]}
        built.update(in_browser(out, some_cells(out, args.repeats), args.repeats))
        rows.append((f"synthetic x{args.scale}" + (" split" if split else ""), built))
    if not args.skip_committed:
        for rel in COMMITTED:
            src = REPO / rel
            out = Path(tempfile.mkdtemp()) / "report.html"
            built = generate(src, out, False)
            built.update(in_browser(out, some_cells(out, 3), 3))
            rows.append((rel or "root", built))
    print("\n| run | file MB | generate s (CPU s) | first paint ms | grid drawn ms | open a cell ms | open a sample ms |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        side = f" + {r['side_files_mb']:.1f} in files" if r["side_files_mb"] else ""
        print(f"| {name} | {r['size_mb']:.2f}{side} | {r['generate_s']:.1f} ({r['cpu_s']:.1f}) | {r['paint_ms']:.0f} | "
              f"{r['grid_ms']:.0f} | {r['cell_ms']:.0f} (max {r['cell_ms_max']:.0f}) | "
              f"{r['sample_ms']:.0f} (max {r['sample_ms_max']:.0f}) |")
    first = rows[0][1]
    misses = [f"{k} {first[k]:.1f} > {limit}" for k, limit in TARGETS.items() if first[k] > limit]
    print("targets (synthetic run): " + ("all met" if not misses else "MISSED: " + ", ".join(misses)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
