"""The report in a real browser: the committed 1.5B run's page opened from file:// with every other request
aborted, clicked through to a transcript, followed by its deep link, searched, filtered; and a page built
from a store with injected markup, which must show it as text and run none of it.

What the page should show is computed here from the store with the harness's own code (the chain walked,
its segments laid out), never copied from the page.

Run by `nox -s browser` (not by `nox -s tests`). It drives Debian's chromium through Playwright. Why
Debian's and not Playwright's own: Playwright's browser download needs the network and a CDN; Debian's
package comes with the system's other packages (`.ci/run` installs it with apt). Without it the tests fail
with the install command, never skip: a report nobody opened in a browser is not tested.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import chdir
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from conftest import REPO
from stores import PAYLOADS, PLANTED, THINK, plant

from harness.cli import main
from harness.params import load_params
from harness.report.transcript import ANSWER, THINKING, pieces
from harness.requests.chain import WAIT_CUE, Job, replay
from harness.requests.store import ResponseStore

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "apt-get install -y chromium"
# headless, no sandbox (CI runs as root), and nothing that phones home: without the background-networking
# flags chromium reaches for Google's hosts at start-up, which a network-free page must not be blamed for
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@dataclass
class Watch:
    """What a page did besides drawing: script errors, console errors, dialogs, requests off file://."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)

    def clean(self) -> None:
        assert not self.errors, f"script errors: {self.errors}"
        assert not self.dialogs, f"dialogs opened: {self.dialogs}"
        assert not self.network, f"requests other than file:// were attempted: {self.network}"


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium with `{INSTALL}`", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS, viewport={"width": 1400, "height": 1000})
        yield context
        context.close()


@pytest.fixture
def page(chromium) -> Iterator[tuple[object, Watch]]:
    """A fresh tab whose every request off file:// is recorded and aborted, and whose script errors,
    console errors and dialogs are recorded; each test ends by asserting there were none."""
    tab = chromium.new_page()
    watch = Watch()
    tab.on("pageerror", lambda error: watch.errors.append(str(error)))
    tab.on("console", lambda message: watch.errors.append(message.text) if message.type == "error" else None)

    def dialog(d):
        watch.dialogs.append(d.message)
        d.dismiss()

    tab.on("dialog", dialog)

    def guard(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            watch.network.append(route.request.url)
            route.abort()

    tab.route("**/*", guard)
    tab.on("request", lambda request: None if request.url.startswith("file:") else watch.network.append(request.url))
    yield tab, watch
    tab.close()


REASONING = REPO / "examples" / "reasoning-1.5b"
PAGE = REASONING / "outputs" / "report.html"


def beside_the_browser(fn, *args):
    """Run fn in a thread of its own: Playwright's sync API holds this thread's event loop, and the harness
    (the chain walk, `harness report`) runs one of its own with asyncio.run."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


@cache
def every_sample(run: Path) -> dict[tuple[str, int, int], list]:
    """Every sample of a run as (problem, budget, sample) -> its pieces, walked over its store."""
    with chdir(run):  # its data.source is relative to the run, as for every stage
        params = load_params("params.yaml")
    problems = {p["id"]: p for p in map(json.loads, (run / "outputs" / "problems.jsonl").read_text().splitlines())}
    table = pd.read_csv(run / "outputs" / "samples.csv", dtype={"problem_id": str})
    jobs = [Job(r.problem_id, problems[r.problem_id]["problem"], problems[r.problem_id]["answer"], int(r.budget),
                int(r.sample)) for r in table.itertuples()]
    outcomes = beside_the_browser(asyncio.run, replay(params, jobs, ResponseStore(run / "store", "sample", readonly=True)))
    return {(j.problem_id, j.budget, j.sample): pieces(o.segments) for j, o in zip(jobs, outcomes)}


def walked(run: Path, pid: str, budget, sample: int) -> list:
    return every_sample(run)[pid, int(budget), int(sample)]


def example_with_waits():
    """A correct sample at the vote budget whose chain holds Wait cues, from the problem furthest down the
    grid (the grid draws only the rows on screen: reaching it needs scrolling)."""
    table = pd.read_csv(REASONING / "outputs" / "samples.csv", dtype={"problem_id": str})
    order = list(dict.fromkeys(table["problem_id"]))
    waited = table[(table["budget"] == 1024) & (table["requests"] >= 3) & table["correct"]]
    row = max(waited.itertuples(), key=lambda r: order.index(r.problem_id))
    return row.problem_id, 1024, int(row.sample)


def ready(tab, url: str) -> None:
    tab.goto(url)
    tab.wait_for_selector("html[data-ready=true]")


def cell(tab, pid: str, budget) -> object:
    """The grid cell of a problem at a budget, scrolling the grid until its row is drawn."""
    selector = f'.cell.budget[data-p="{pid}"][data-b="{budget}"]'
    for _ in range(200):
        if tab.locator(selector).count():
            return tab.locator(selector)
        tab.eval_on_selector("#grid-scroll", "el => { el.scrollTop += el.clientHeight / 2; }")
        tab.wait_for_timeout(30)
    raise AssertionError(f"no grid cell {selector}")


def transcript(tab, pid: str, budget, sample: int) -> dict:
    tab.wait_for_selector(f'#transcript[data-state=ready][data-p="{pid}"][data-b="{budget}"][data-s="{sample}"]')
    return tab.eval_on_selector("#transcript", """box => ({
        text: box.textContent,
        thinking: [...box.querySelectorAll("details.thinking pre.body")].map(e => e.textContent).join(""),
        answer: [...box.querySelectorAll(".answer-flow pre.body")].map(e => e.textContent).join(""),
        waits: [...box.querySelectorAll("details.thinking mark.ins-wait")].map(e => e.textContent),
        grade: box.querySelector("h2 .grade").textContent,
    })""")


def expected_view(pid: str, budget, sample: int) -> tuple[list, dict]:
    laid = walked(REASONING, pid, budget, sample)
    return laid, {"thinking": "".join(p[2] for p in laid if p[0] == THINKING),
                  "answer_tail": "".join(p[2] for p in laid if p[0] == ANSWER),
                  "waits": [p[2] for p in laid if p[1] == WAIT_CUE]}


def test_the_committed_report_loads_nothing_but_itself(page):
    tab, watch = page
    ready(tab, PAGE.as_uri())
    pid, budget, sample = example_with_waits()
    cell(tab, pid, budget).click()
    tab.locator(f'.sample-row[data-s="{sample}"]').click()
    transcript(tab, pid, budget, sample)
    tab.fill("#search", "Wait")
    tab.press("#search", "Enter")
    tab.locator("#search-status", has_text="matches").wait_for()
    assert tab.evaluate("performance.getEntriesByType('resource').filter(e => !e.name.startsWith('file:')).length") == 0
    watch.clean()


def test_a_cell_then_a_sample_shows_its_thinking_the_marked_waits_and_the_grade(page):
    tab, watch = page
    ready(tab, PAGE.as_uri())
    pid, budget, sample = example_with_waits()
    _, want = expected_view(pid, budget, sample)
    cell(tab, pid, budget).click()
    assert tab.locator("#cell-pane h2").text_content().endswith(f"{pid} · budget {budget}")
    tab.locator(f'.sample-row[data-s="{sample}"]').click()
    seen = transcript(tab, pid, budget, sample)
    assert seen["thinking"] == want["thinking"] and len(want["thinking"]) > 500
    assert seen["waits"] == want["waits"] and seen["waits"]  # every cue the harness inserted, and only those
    assert want["answer_tail"] in seen["answer"]
    assert seen["grade"] == "correct"
    tab.locator("#transcript details.thinking summary").click()  # opened, the thinking and its marks are on screen
    assert tab.locator("#transcript details.thinking mark.ins-wait").first.is_visible()
    assert tab.locator("#transcript .fact-grade").text_content().startswith("correct")
    watch.clean()


def test_the_deep_link_opens_the_same_view(page):
    tab, watch = page
    pid, budget, sample = example_with_waits()
    ready(tab, PAGE.as_uri())
    cell(tab, pid, budget).click()
    tab.locator(f'.sample-row[data-s="{sample}"]').click()
    clicked = transcript(tab, pid, budget, sample)
    assert tab.evaluate("location.hash") == f"#p={quote(pid, safe='')}&b={budget}&s={sample}"
    other = tab.context.new_page()
    ready(other, PAGE.as_uri() + f"#p={quote(pid, safe='')}&b={budget}&s={sample}")
    assert transcript(other, pid, budget, sample) == clicked
    assert other.locator(f'.cell.budget.selected[data-p="{pid}"][data-b="{budget}"]').count() == 1
    other.close()
    watch.clean()


def test_search_recolours_the_grid_by_the_matches_in_thinking_and_answers(page):
    tab, watch = page
    ready(tab, PAGE.as_uri())
    tab.fill("#search", "wait,")
    tab.press("#search", "Enter")
    tab.locator("#search-status", has_text="matches").wait_for()
    shown = int(tab.locator("#search-status").text_content().split()[0].replace(",", ""))
    table = pd.read_csv(REASONING / "outputs" / "samples.csv", dtype={"problem_id": str})
    expected = 0
    for row in table.itertuples():  # case-insensitive, over the whole chain's text as the page has it
        expected += "".join(p[2] for p in walked(REASONING, row.problem_id, row.budget, row.sample)).lower().count("wait,")
    assert shown == expected > 0
    pid, budget, _ = example_with_waits()
    count = cell(tab, pid, budget).locator(".count").text_content()
    assert int(count) == sum("".join(p[2] for p in walked(REASONING, pid, budget, s)).lower().count("wait,")
                             for s in range(4))
    watch.clean()


def test_filters_and_vote_groups_narrow_the_samples(page):
    tab, watch = page
    ready(tab, PAGE.as_uri())
    table = pd.read_csv(REASONING / "outputs" / "samples.csv", dtype={"problem_id": str, "answer": str})
    tab.check("#filter-wrong")
    assert tab.locator("#list-head").text_content().startswith(f"{int((~table['correct']).sum())} samples of the run")
    tab.uncheck("#filter-wrong")
    tab.locator('svg.curve .point[data-b="1024"][data-k="4"]').click()
    assert tab.locator("#list-head").text_content().startswith(f"{int((table['budget'] == 1024).sum())} samples")
    pid, budget, _ = example_with_waits()
    cell(tab, pid, budget).click()
    group = tab.locator("#cell-pane tr.group").first
    votes = int(group.locator("td").nth(1).text_content())
    group.click()
    assert tab.locator(".sample-row").count() == votes
    watch.clean()


@pytest.fixture
def planted(tmp_path_factory, monkeypatch) -> Path:
    run = beside_the_browser(plant, tmp_path_factory.mktemp("planted") / "run", monkeypatch)
    assert beside_the_browser(main, ["report"]) == 0
    return run


def test_injected_markup_shows_as_text_and_runs_nothing(page, planted):
    tab, watch = page
    pid, budget, sample = PLANTED
    ready(tab, (planted / "outputs" / "report.html").as_uri() + f"#p={pid}&b={budget}&s={sample}")
    seen = transcript(tab, pid, budget, sample)
    for payload in PAYLOADS.values():
        assert payload in seen["text"], payload
    tab.locator("#transcript details.thinking summary").click()
    assert tab.locator("#transcript details.thinking pre.body").is_visible()
    assert tab.locator("#cell-pane table.groups code").first.text_content().startswith("<imgsrc=xonerror=")
    assert tab.evaluate("window.__pwned") is None
    assert tab.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert tab.evaluate("[...document.querySelectorAll('svg')].every(s => s.classList.contains('curve'))")
    scripts = tab.evaluate("[...document.scripts].map(s => s.type || 'inline')")
    assert scripts.count("inline") == 1 and set(scripts) <= {"inline", "application/json", "application/octet-stream"}
    watch.clean()


def test_two_runs_side_by_side_highlight_the_cells_that_differ(page, tmp_path, monkeypatch):
    tab, watch = page
    methods = REPO / "examples" / "embedded-methods"
    for name in ("forcing", "forcing_wait"):
        shutil.copytree(methods / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert beside_the_browser(main, ["report", "forcing", "forcing_wait"]) == 0
    ready(tab, (tmp_path / "outputs" / "report_compare.html").as_uri())
    a, b = (pd.read_csv(tmp_path / n / "outputs" / "samples.csv") for n in ("forcing", "forcing_wait"))
    share = [t.groupby(["problem_id", "budget"])["correct"].mean() for t in (a, b)]
    differ = int((share[0] != share[1].reindex(share[0].index)).sum())
    marked = tab.evaluate("document.querySelectorAll('.cell.budget.differs[data-r=A]').length")
    assert marked >= differ > 0  # every budget cell whose share differs (a changed verdict alone also counts)
    assert tab.locator(".cell.budget[data-r=B]").count() == tab.locator(".cell.budget[data-r=A]").count()
    watch.clean()


def test_a_split_report_loads_each_problems_file_on_demand(page, tmp_path, monkeypatch):
    """Past the single-file limit the cells live in per-problem scripts beside the page, loaded by <script>
    tags (fetch is refused on file://), still under the page's content-security policy."""
    tab, watch = page
    run = shutil.copytree(THINK, tmp_path / "run")
    monkeypatch.chdir(run)
    assert beside_the_browser(main, ["report", "--split"]) == 0
    url = (run / "outputs" / "report.html").as_uri()
    ready(tab, url + "#p=chain_sum-3&b=256&s=0")
    seen = transcript(tab, "chain_sum-3", 256, 0)
    laid = walked(THINK, "chain_sum-3", 256, 0)
    assert seen["thinking"] == "".join(p[2] for p in laid if p[0] == THINKING)
    cell(tab, "chain_sum-3", 64).click()  # the same problem's file, already loaded
    tab.locator('.sample-row[data-s="0"]').click()
    assert transcript(tab, "chain_sum-3", 64, 0)["grade"]
    loaded = tab.evaluate("() => [...document.scripts].filter(s => s.src).map(s => s.src.split('/').slice(-2).join('/'))")
    assert loaded == ["report_files/A-3.js"]
    watch.clean()
