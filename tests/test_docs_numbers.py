"""The numbers the README and docs quote from the committed run are the committed run's.

Each quoted figure is rendered here from outputs/metrics.json, outputs/*.csv, the store and the files'
sizes, in the words the doc uses, and must appear in the doc (whitespace and line breaks aside): a rerun
that moves a number, or an edit that rounds it differently, fails here instead of drifting. The README's
summary block is the summary code's own output on the committed outputs (all but the wall time, which is
measured). Every params diff in README.md and docs/ applies to the committed params.yaml, its `-` lines
included (conftest.apply_params_diff).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, apply_params_diff
from gitrepo import outputs

WORDS = dict(enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]))
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _flat(path: Path) -> str:
    return " ".join(path.read_text(encoding="utf-8").split())


def _committed() -> dict:
    """What the docs quote, read from the committed run's files."""
    metrics = json.loads((REPO / "outputs/metrics.json").read_text())
    strategies = pd.read_csv(REPO / "outputs/strategies.csv")
    samples = pd.read_csv(REPO / "outputs/samples.csv", dtype={"answer": str})
    ids = [json.loads(line)["id"] for line in (REPO / "outputs/problems.jsonl").open()]
    rule = {r: strategies[(strategies.rule == r) & (strategies.budget == metrics["vote_budget"])].iloc[0]
            for r in ("unanimity w=2", "unanimity w=3")}
    late = samples[samples.problem_id.isin(ids[12:])]
    return {"m": metrics, "law": metrics["law"], "rule": rule, "late": late,
            "problems": json.loads((REPO / "outputs/dataset.json").read_text())["problems"],
            "requests": int(samples.requests.sum()),
            "early_requests": int(samples[samples.problem_id.isin(ids[:12])].requests.sum()),
            "store_kb": sum(p.stat().st_size for p in (REPO / "store").glob("*.jsonl")) / 1000,
            "outputs_kb": sum((REPO / f).stat().st_size for f in outputs()) / 1000}


def _kb(size: float) -> str:
    return f"~{round(size / 10) * 10:.0f} KB"


def quotes() -> list[tuple[str, str]]:
    """(doc, the sentence fragment as the doc must print it)."""
    c = _committed()
    m, law, w2, w3 = c["m"], c["law"], c["rule"]["unanimity w=2"], c["rule"]["unanimity w=3"]
    acc, tok, maj, tok_k = m["accuracy_by_budget"], m["tokens_by_budget"], m["maj_at_k"], m["tokens_by_k"]
    lo_b, hi_b = min(acc, key=int), max(acc, key=int)
    top_k = max(maj, key=int)
    law_text = (f"{law['slope_points_per_doubling']:+.1f} points per doubling of tokens (95% CI "
                f"{law['slope_lo']:+.1f} to {law['slope_hi']:+.1f})")
    return [
        ("README.md", law_text),
        ("README.md", f"{c['problems']} reasoning-gym `chain_sum` problems"),
        ("README.md", f"from {acc[lo_b]:.0%} with {tok[lo_b]:.0f} tokens to {acc[hi_b]:.0%} with {tok[hi_b]:.0f}"),
        ("README.md", f"a vote over {top_k} answers carries it to {maj[top_k]:.0%} ({tok_k[top_k]:,.0f} tokens)"),
        ("README.md", (f"reaches the same {w3.maj_at_k:.0%} with {w3.mean_samples:.1f} answers on average "
                      f"({w3.mean_tokens:,.0f} tokens)")),
        ("README.md", f"Its fitted rise ends at ~{2 ** law['saturation_log2_tokens']:,.0f} tokens"),
        ("README.md", f"On the committed run it is {len(m['frontier']['points'])} points"),
        ("README.md", (f"two ({w2.maj_at_k:.1%} at {w2.mean_tokens:,.0f} tokens) or three ({w3.maj_at_k:.1%} at "
                      f"{w3.mean_tokens:,.0f})")),
        ("README.md", f"votes of {top_k} at {tok_k[top_k]:,.0f} tokens"),
        ("README.md", (f"last 18 problems ({int(c['late'].requests.sum())} requests, "
                      f"{int(c['late'].completion_tokens.sum()):,} completion tokens)")),
        ("README.md", f"the first 12 problems' {c['early_requests']} responses"),
        ("docs/statistics.md", law_text.replace(" of tokens", "")),
        ("docs/statistics.md", (f"(~{2 ** law['fit_from_log2_tokens']:,.0f} to ~{2 ** law['fit_to_log2_tokens']:,.0f} "
                               f"tokens); the last measured point (maj@{top_k} at {tok_k[top_k]:,.0f} tokens, log2 "
                               f"{math.log2(tok_k[top_k]):.2f})")),
        ("docs/statistics.md", (f"unanimity w=2 at 256 reaches {w2.maj_at_k:.1%} at {w2.mean_tokens:,.0f} tokens, "
                               f"where maj@4 reaches {maj['4']:.1%} at {tok_k['4']:,.0f} and maj@{top_k} "
                               f"{maj[top_k]:.1%} at {tok_k[top_k]:,.0f}")),
        ("docs/statistics.md", (f"{m['cost']['output_tokens']:,} tokens paid against "
                               f"{m['cost']['tokens_seed_scheme']:,.0f} for the seed's scheme "
                               f"({m['cost']['paid_over_seed_scheme']:.2f}×")),
        ("docs/sharing.md", f"(store {_kb(c['store_kb'])}, outputs {_kb(c['outputs_kb'])})"),
        ("docs/sharing.md", f"Today's store ({c['requests']} requests) and {WORDS[len(outputs())]} outputs"),
    ]


@pytest.mark.parametrize(("doc", "quote"), quotes(), ids=lambda v: v[:60])
def test_the_doc_quotes_the_committed_run(doc, quote):
    assert quote in _flat(REPO / doc), f"{doc} should say: {quote}"


def test_the_readme_summary_is_what_the_summary_prints_for_the_committed_run(monkeypatch):
    from harness.params import load_params
    from harness.summary import gather, lines

    monkeypatch.chdir(REPO)
    shown = re.search(r"```console\n(summary:\n.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    assert shown, "the README lost its summary block"
    printed = lines(gather(0, 1.0), load_params("params.yaml"))
    wall = [i for i, line in enumerate(printed) if line.lstrip().startswith("wall time")]
    documented = shown.group(1).rstrip("\n").split("\n")
    assert len(documented) == len(printed)
    assert [l for i, l in enumerate(documented) if i not in wall] == [l for i, l in enumerate(printed) if i not in wall]


def _diffs() -> list[tuple[str, str]]:
    return [(doc.relative_to(REPO).as_posix(), diff) for doc in DOCS
            for diff in re.findall(r"```diff\n(.*?)```", doc.read_text(encoding="utf-8"), re.DOTALL)]


def test_every_params_diff_in_the_docs_removes_what_params_yaml_holds():
    """Each diff against the committed params.yaml: its `-` lines are what the file holds. docs/methods.md's
    worked example is a diff on top of the README's hosted one, as its text says."""
    base = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    diffs = _diffs()
    assert len(diffs) >= 10, diffs  # the README's two, methods.md's one, servers.md's seven
    readme = [d for doc, d in diffs if doc == "README.md"]
    hosted = apply_params_diff(yaml.safe_load(yaml.safe_dump(base)), readme[-1])
    for doc, diff in diffs:
        start = hosted if doc == "docs/methods.md" else base
        apply_params_diff(yaml.safe_load(yaml.safe_dump(start)), diff)


def test_every_nox_session_says_what_it_does_in_one_whole_first_line():
    """`nox -l` prints each session's first docstring line: it must be a sentence, not half of one."""
    import ast

    tree = ast.parse((REPO / "noxfile.py").read_text(encoding="utf-8"))
    sessions = [f for f in tree.body if isinstance(f, ast.FunctionDef)
                and any("session" in ast.unparse(d) for d in f.decorator_list)]
    assert len(sessions) >= 10
    for function in sessions:
        first = (ast.get_docstring(function) or "").split("\n", 1)[0]
        assert first.endswith("."), f"{function.name}: {first!r}"


def _methods_run(method: str) -> dict:
    return json.loads((REPO / "examples/embedded-methods" / method / "outputs/metrics.json").read_text())


def test_the_methods_doc_quotes_the_committed_method_runs():
    """docs/methods.md's paragraph on the four committed method runs (examples/embedded-methods), figure by
    figure from their metrics.json."""
    prompt, cap, forcing, wait = (_methods_run(m) for m in ("prompt", "cap", "forcing", "forcing_wait"))
    used = prompt["tokens_by_budget"].values()
    natural = cap["tokens_by_budget"]["512"]
    quoted = [
        f"({round(min(used))}–{round(max(used))} tokens whatever N is)",
        f"natural length (~{round(natural / 5) * 5:.0f} tokens)",
        f"reach {100 * cap['accuracy_by_budget']['512']:.0f}% and {100 * forcing['accuracy_by_budget']['512']:.0f}% there",
        (f"spends {100 * wait['tokens_by_budget']['256'] / 256:.0f}% of the budget at 256 and "
         f"{100 * wait['tokens_by_budget']['512'] / 512:.0f}% at 512"),
    ]
    at_256, at_512 = (round(100 * wait["accuracy_by_budget"][b]) for b in ("256", "512"))
    quoted.append(f"({at_256}% at both)" if at_256 == at_512 else f"({at_256}%, {at_512}%)")
    flat = _flat(REPO / "docs/methods.md")
    missing = [q for q in quoted if q not in flat]
    assert not missing, missing
