"""`harness report`: one self-contained page per run, the same bytes from the same store, model text only
ever as data, no network, no API key.

The browser-side checks (clicks, the deep link, injected text rendering as text) are tests/browser/.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO
from stores import PAYLOADS, THINK, plant, planted_copy

from harness import redact
from harness.cli import main
from harness.params import load_params
from harness.report import page as report_page
from harness.report.build import metric_tables, write_report
from harness.requests.chain import first_request
from harness.requests.store import request_key

CELL = r'<script type="application/octet-stream" id="(cell-[A-Z]-\d+)">([^<]*)</script>\n'


def cells(html: str) -> dict[str, object]:
    """Every cell payload of a single-file page, decoded as the browser decodes it."""
    found = re.findall(CELL, html)
    assert found, "no cell in the page"
    return {cid: report_page.unpacked(text) for cid, text in found}


def index_of(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="report-index">(.*?)</script>', html, re.DOTALL)
    assert match
    return json.loads(match.group(1))


def build(run: Path, monkeypatch, *args: str) -> str:
    monkeypatch.chdir(run)
    monkeypatch.setenv("HARNESS_NO_REQUESTS", "1")
    assert main(["report", *args]) == 0
    return (run / "outputs" / "report.html").read_text(encoding="utf-8")


def test_the_same_store_gives_the_same_bytes_wherever_it_is_built(tmp_path, monkeypatch):
    first = shutil.copytree(THINK, tmp_path / "one" / "qwen3_wait")
    second = shutil.copytree(THINK, tmp_path / "elsewhere" / "renamed")
    a, b = build(first, monkeypatch), build(second, monkeypatch)
    assert a == b
    assert build(first, monkeypatch) == a
    for leak in (str(tmp_path), "renamed", str(Path.home())):
        assert leak not in a


def test_injected_markup_stays_data_in_every_container(tmp_path, monkeypatch):
    run = plant(tmp_path / "planted", monkeypatch)
    samples = pd.read_csv(run / "outputs" / "samples.csv", dtype={"answer": str})
    assert samples["answer"].str.startswith("<img").any(), "the planted answer was not extracted (spaces normalized)"
    html = build(run, monkeypatch)
    # the markup has exactly the page's own elements: one script, the index, one element per cell
    decoded = cells(html)
    assert html.count("<script") == 2 + len(decoded)
    assert html.count("</script>") == 2 + len(decoded)
    assert "<img" not in html and "<svg" not in html and "\u2028" not in html and "&lt;b&gt;" not in html
    index = index_of(html)  # the index parses back to the planted answer, character for character
    answers = {s[index["sample_fields"].index("answer")] for c in index["runs"][0]["cells"] for s in c["samples"]}
    assert any(a and a.startswith("<imgsrc=xonerror=") for a in answers)
    text = json.dumps(list(decoded.values()), ensure_ascii=False)
    for payload in PAYLOADS.values():
        assert json.dumps(payload, ensure_ascii=False)[1:-1] in text, payload


def test_the_policy_forbids_every_load_and_allows_only_the_pages_own_script_and_style(monkeypatch, tmp_path):
    html = build(shutil.copytree(THINK, tmp_path / "run"), monkeypatch)
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html).group(1)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    script = re.search(r"<script>(.*?)</script>", html, re.DOTALL).group(1)
    style = re.search(r"<style>(.*?)</style>", html, re.DOTALL).group(1)
    digest = lambda text: "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
    assert directives["script-src"] == digest(script)
    assert directives["style-src"] == digest(style)
    assert directives["img-src"] == "data: blob:"
    assert "unsafe" not in policy and "http" not in policy
    assert not re.search(r"\s(src|href|action)=", html), "the page must name no resource to load"
    # the one URL in the page is the SVG namespace the script creates its curve in, never a request
    assert re.findall(r"https?://[^\s\"']+", html) == ["http://www.w3.org/2000/svg"]


def test_an_echoed_api_key_never_reaches_the_page(tmp_path, monkeypatch):
    secret = "sk-report-" + hashlib.sha256(b"not on the page").hexdigest()[:32]
    run = planted_copy(THINK, tmp_path / "run", lambda pid, b, s, step, text: text + f" (key {secret})")
    params = (run / "params.yaml").read_text().replace("api_key_env: null", "api_key_env: HARNESS_REPORT_KEY")
    (run / "params.yaml").write_text(params)
    monkeypatch.setenv("HARNESS_REPORT_KEY", secret)
    monkeypatch.setattr(redact, "_secrets", set())
    html = build(run, monkeypatch)
    assert secret not in html
    assert all(secret not in json.dumps(c) for c in cells(html).values())
    assert redact.PLACEHOLDER in json.dumps(list(cells(html).values()))  # it was there, and was hidden
    assert index_of(html)["runs"][0]["provenance"]["api_key_env"] == "HARNESS_REPORT_KEY"


def test_a_failed_sample_shows_its_error_and_a_missing_answered_one_stops_the_report(tmp_path, monkeypatch):
    run = shutil.copytree(THINK, tmp_path / "run")
    table = pd.read_csv(run / "outputs" / "samples.csv", dtype=str, keep_default_na=False)
    table.loc[0, ["status", "error", "correct", "answer"]] = ["failed-after-retries", "HTTP 500 after 4 retries", "", ""]
    table.to_csv(run / "outputs" / "samples.csv", index=False)
    row = table.loc[0]
    monkeypatch.chdir(run)
    problem = json.loads((run / "outputs" / "problems.jsonl").read_text().splitlines()[0])
    assert problem["id"] == row["problem_id"]
    first = request_key(first_request(load_params("params.yaml"), problem["problem"], problem["id"],
                                      int(row["budget"]), int(row["sample"])))
    lines = (run / "store" / "sample.jsonl").read_text().splitlines() + \
        (run / "store" / "calibrate.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["key"] != first]  # its chain now stops at the first step
    assert len(kept) < len(lines)
    (run / "store" / "sample.jsonl").write_text("\n".join(kept) + "\n")
    (run / "store" / "calibrate.jsonl").write_text("")
    html = build(run, monkeypatch)
    index = index_of(html)
    fields = index["sample_fields"]
    cell = index["runs"][0]["cells"][0]
    row = cell["samples"][0]
    assert (row[fields.index("tick")], row[fields.index("error")]) == ("f", "HTTP 500 after 4 retries")
    assert cell["ticks"][0] == "f" and cell["graded"] == len(cell["samples"]) - 1
    payload = cells(html)["cell-A-0"]
    assert payload["samples"][0]["pieces"] is None and "no response" in payload["samples"][0]["missing"]

    table.loc[0, "status"] = "ok"  # the table says answered, the store has nothing: not a report to trust
    table.to_csv(run / "outputs" / "samples.csv", index=False)
    monkeypatch.chdir(run)
    assert main(["report"]) == 2


def test_two_runs_share_one_page_on_the_problems_they_share(tmp_path, monkeypatch):
    methods = REPO / "examples" / "embedded-methods"
    for name in ("forcing", "forcing_wait"):
        shutil.copytree(methods / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "forcing", "forcing_wait"]) == 0
    html = (tmp_path / "outputs" / "report_compare.html").read_text(encoding="utf-8")
    runs = index_of(html)["runs"]
    assert [r["id"] for r in runs] == ["A", "B"]
    assert runs[0]["label"].startswith("forcing: ") and runs[1]["label"].startswith("forcing_wait: ")
    assert {c for c in cells(html)} >= {"cell-A-0", "cell-B-0"}
    assert main(["report", "forcing", "forcing_wait", "forcing"]) == 2  # three runs: one line, exit 2


def test_a_split_report_moves_each_problems_cells_into_a_script_file_beside_it(tmp_path, monkeypatch):
    run = shutil.copytree(THINK, tmp_path / "run")
    single = build(run, monkeypatch)
    split = build(run, monkeypatch, "--split")
    assert "application/octet-stream" not in split
    assert "script-src 'sha256-" in split and "'self'" in split
    files = sorted((run / "outputs" / "report_files").glob("*.js"))
    assert [f.name for f in files] == [f"A-{p}.js" for p in range(4)]
    loaded = {}
    for f in files:
        for cid, text in re.findall(r'window\.harnessReportCells\("([^"]+)","([^"]*)"\);', f.read_text()):
            loaded[cid] = report_page.unpacked(text)
    assert loaded == cells(single)
    assert index_of(split)["split"] == "report_files"
    assert build(run, monkeypatch) == single and not (run / "outputs" / "report_files").exists()


def test_the_streamed_split_report_is_the_whole_page_moved_out_cell_for_cell(tmp_path, monkeypatch):
    """The report spools its cells to disk and writes the page and its files piece by piece: the bytes must
    be those of the page built whole in memory (`page.page`), the split page must be the single page
    without its cells, each file its problem's cells as lines, and the summed payload lengths decide."""
    run = shutil.copytree(THINK, tmp_path / "run")
    single = build(run, monkeypatch)
    texts = dict(re.findall(CELL, single))  # cell id -> packed payload, in cell order
    size = sum(len(t) for t in texts.values())
    monkeypatch.setattr(report_page, "SINGLE_FILE_LIMIT", size - 1)  # one byte too many for one file
    split = build(run, monkeypatch)  # no --split: the summed lengths decide
    files = {f.name: f.read_text(encoding="utf-8") for f in (run / "outputs" / "report_files").iterdir()}

    index = index_of(single)
    payloads = {r["id"]: [texts[report_page.cell_id(r["id"], c)] for c in range(len(r["cells"]))]
                for r in index["runs"]}
    whole = report_page.page(index, payloads, True, "report_files")
    assert split == whole.html and files == whole.files
    assert single == report_page.page(index, payloads, False, "report_files").html

    # the same, spelled out without page.py: each problem's file is its cells' lines, in cell order ...
    expected: dict[str, str] = {}
    for cid, text in texts.items():
        run_id, c = cid.split("-")[1:]
        name = f"{run_id}-{index['runs'][0]['cells'][int(c)]['p']}.js"
        expected[name] = expected.get(name, "") + f'window.harnessReportCells("{cid}","{text}");\n'
    assert files == expected and len(files) == 4
    # ... and the split page is the single page without its cells, its index saying where they went and its
    # policy letting the page load them
    assert index_of(split) == {**index, "split": "report_files"}
    blank = lambda html: re.sub(r'(id="report-index">).*?(</script>)', r"\1\2", html, flags=re.DOTALL)
    without = re.sub(r"(script-src '[^']+')", r"\1 'self'", re.sub(CELL, "", single), count=1)
    assert blank(split) == blank(without)

    monkeypatch.setattr(report_page, "SINGLE_FILE_LIMIT", size)  # exactly the cells' size: still one file
    assert build(run, monkeypatch) == single and not (run / "outputs" / "report_files").exists()


@pytest.mark.parametrize("failing", ["packed", "cell_element"])
def test_a_failed_report_leaves_the_previous_page_and_no_scratch_file(failing, tmp_path, monkeypatch):
    """The cells wait in a scratch file beside the page while it is built (`packed`: a run half read) and
    written (`cell_element`: the page half written); whatever fails, the scratch file goes, the page's temp
    file goes, and the previous page stays. A killed report's scratch file goes with the next report."""
    run = shutil.copytree(THINK, tmp_path / "run")
    outputs, page = run / "outputs", run / "outputs" / "report.html"
    page.write_bytes(b"the previous page\n")
    dead = outputs / ".report_cells.999999999.0badf00d.tmp"  # no process has this id: a killed report's
    dead.write_text("a killed report's cells")
    temps = lambda: sorted(p.name for p in outputs.glob(".*.tmp"))
    real, seen = getattr(report_page, failing), []

    def fails_on_the_third_call(*args):
        seen.append(temps())
        if len(seen) == 3:
            raise OSError(28, "No space left on device")
        return real(*args)

    monkeypatch.setattr(report_page, failing, fails_on_the_third_call)
    monkeypatch.chdir(run)
    with pytest.raises(OSError, match="No space left"):
        write_report([Path(".")], Path("outputs/report.html"))
    (spooled,) = [n for n in seen[-1] if n.startswith(".report_cells.")]  # it was there, and only ours
    assert spooled != dead.name
    assert any(n.startswith(".report.html.") for n in seen[-1]) == (failing == "cell_element")
    assert temps() == [] and page.read_bytes() == b"the previous page\n"

    monkeypatch.setattr(report_page, failing, real)
    write_report([Path(".")], Path("outputs/report.html"))
    assert temps() == [] and "cell-A-0" in page.read_text(encoding="utf-8")


def test_metrics_are_laid_out_by_their_shape_so_a_new_metric_shows_without_code():
    metrics = {"best_accuracy": 0.5, "accuracy_by_budget": {"16": 0.1, "256": 0.5},
               "accuracy_interval_by_budget": {"16": {"lo": 0.0, "hi": 0.2}, "256": {"lo": 0.3, "hi": 0.7}},
               "maj_at_k": {"1": 0.4, "8": 0.6}, "law": {"statement": "rises 7 points per doubling", "slope": 7.0},
               "a_new_measure": {"statement": "something new", "value": 1}, "status": {"ok": 10}}
    tables = metric_tables(metrics, [16, 256])
    assert tables["scalars"] == [["best_accuracy", 0.5]]
    assert tables["by_budget"] == {"columns": ["accuracy_by_budget", "accuracy_interval_by_budget"],
                                   "rows": [["16", 0.1, [0.0, 0.2]], ["256", 0.5, [0.3, 0.7]]]}
    assert tables["by_k"] == {"columns": ["maj_at_k"], "rows": [["1", 0.4], ["8", 0.6]]}
    assert ["a_new_measure", "something new"] in tables["sentences"]
    assert ["law", [["slope", 7.0]]] in tables["sections"] and ["status", [["ok", 10]]] in tables["sections"]


@pytest.mark.parametrize("text", ["</script><script>alert(1)</script>", "<!--", "a\u2028b\u2029c", "&amp;"])
def test_inline_json_cannot_end_its_element_and_reads_back_the_same(text):
    inline = report_page.inline_json({"t": text})
    assert "<" not in inline and ">" not in inline and "&" not in inline and "\u2028" not in inline
    assert json.loads(inline) == {"t": text}


def test_base85_round_trips_every_length_and_spells_no_markup():
    import os

    assert len(set(report_page.BASE85)) == 85 and not set("<>&\"'\\/") & set(report_page.BASE85)
    for n in [*range(12), 1000, 4097]:
        data = os.urandom(n) if n % 3 else bytes([255]) * n  # all ones: the largest group values
        text = report_page.base85(data)
        assert len(text) == n // 4 * 5 + (n % 4 + 1 if n % 4 else 0)
        assert report_page.unbase85(text) == data
