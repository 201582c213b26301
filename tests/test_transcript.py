"""Where the harness inserted text into a sample: recorded by `chain.walk` itself (Outcome.segments), never
found by searching the text, and laid out by transcript.pieces where the grader splits thinking from answer.

Checked on made-up segments (each region rule, a model that writes "Wait," itself) and on every committed
run's store: the segments rebuild each sample's text exactly, and the Wait cues counted from them are the
requests the sample table says each chain made.
"""

from __future__ import annotations

import asyncio
import json
import os

import pandas as pd
import pytest
from conftest import REPO

from harness.analysis.thinking_text import split_thinking, thinking_bounds
from harness.params import load_params
from harness.report.transcript import ANSWER, BETWEEN, THINKING, chain_text, pieces
from harness.requests.chain import (
    ANSWER_CUE,
    MODEL_TEXT,
    REASONING_FIELD,
    THINK_CLOSE_INSERTED,
    WAIT_CUE,
    Job,
    replay,
    template_of,
)
from harness.requests.store import ResponseStore

RUNS = [REPO, REPO / "examples" / "reasoning-1.5b", REPO / "examples" / "reasoning-1.5b" / "baseline",
        REPO / "examples" / "compute-optimal", REPO / "examples" / "think-tags" / "qwen3_wait",
        *(REPO / "examples" / "embedded-methods" / m for m in ("prompt", "cap", "forcing", "forcing_wait"))]


def test_a_forced_think_tag_chain_puts_each_insertion_where_it_was_made():
    segments = [(MODEL_TEXT, "Add 2 and 2."), (WAIT_CUE, "\nWait,"), (MODEL_TEXT, " it is 4."),
                (THINK_CLOSE_INSERTED, "\n</think>"), (ANSWER_CUE, "\n\nFinal answer: \\boxed{"), (MODEL_TEXT, "4}")]
    assert pieces(segments) == [
        (THINKING, MODEL_TEXT, "Add 2 and 2."), (THINKING, WAIT_CUE, "\nWait,"), (THINKING, MODEL_TEXT, " it is 4."),
        (BETWEEN, THINK_CLOSE_INSERTED, "\n</think>"),  # starts inside the thinking, ends past it: one mark
        (ANSWER, ANSWER_CUE, "\n\nFinal answer: \\boxed{"), (ANSWER, MODEL_TEXT, "4}")]


def test_a_wait_the_model_wrote_itself_is_not_an_insertion():
    said = "Let me see. Wait, 3 + 4 is 7."
    assert pieces([(MODEL_TEXT, said)]) == [(ANSWER, MODEL_TEXT, said)]


def test_tags_the_model_wrote_are_cut_out_of_its_text_and_the_answer_follows_the_last_close():
    text = "<think>try 3</think>draft</think>The answer is 3."
    got = pieces([(MODEL_TEXT, text)])
    assert [p[2] for p in got] == ["<think>", "try 3</think>draft", "</think>", "The answer is 3."]
    assert [p[0] for p in got] == [BETWEEN, THINKING, BETWEEN, ANSWER]
    thinking, answer = split_thinking(text)
    assert "".join(p[2] for p in got if p[0] == THINKING) == thinking
    assert "".join(p[2] for p in got if p[0] == ANSWER) == answer


def test_a_servers_reasoning_field_is_thinking_but_not_part_of_the_text():
    segments = [(REASONING_FIELD, "compute 6*7"), (MODEL_TEXT, "42")]
    assert pieces(segments) == [(THINKING, REASONING_FIELD, "compute 6*7"), (ANSWER, MODEL_TEXT, "42")]
    assert chain_text(segments) == "42"


def test_an_unclosed_thinking_block_has_no_answer_and_the_cut_thinking_is_all_thinking():
    text = "<think>still going"
    assert thinking_bounds(text) == (slice(7, 18), slice(0, 0))
    assert pieces([(MODEL_TEXT, text)]) == [(BETWEEN, MODEL_TEXT, "<think>"), (THINKING, MODEL_TEXT, "still going")]


def _walked(run):
    """Every sample of a committed run walked over its store, with its row of the sample table."""
    cwd = os.getcwd()
    os.chdir(run)
    try:
        params = load_params("params.yaml")
        problems = {p["id"]: p for p in map(json.loads, (run / "outputs" / "problems.jsonl").read_text().splitlines())}
        table = pd.read_csv(run / "outputs" / "samples.csv", dtype={"problem_id": str})
        jobs = [Job(r.problem_id, problems[r.problem_id]["problem"], problems[r.problem_id]["answer"],
                    int(r.budget) if str(r.budget).isdigit() else r.budget, int(r.sample)) for r in table.itertuples()]
        store = ResponseStore(run / "store", "sample", readonly=True)  # a missing response raises Missing
        return params, table, asyncio.run(replay(params, jobs, store))
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.relative_to(REPO).as_posix() or "root")
def test_every_committed_sample_is_rebuilt_from_its_segments(run):
    params, table, outcomes = _walked(run)
    for row, outcome in zip(table.itertuples(), outcomes):
        assert chain_text(outcome.segments) == outcome.text
        laid_out = pieces(outcome.segments)
        assert "".join(p[2] for p in laid_out if p[1] != REASONING_FIELD) == outcome.text
        assert "".join(p[2] for p in laid_out if p[0] == ANSWER) == outcome.answer
        kinds = [kind for kind, _ in outcome.segments]
        forced = kinds.count(ANSWER_CUE)
        assert row.requests == 1 + kinds.count(WAIT_CUE) + forced, (row.problem_id, row.budget, row.sample)
        # a think-tag template's close tag is written by the harness exactly when it forced the answer
        assert (THINK_CLOSE_INSERTED in kinds) == bool(forced and template_of(params).thinks)


def test_the_15b_run_marks_its_wait_cues_inside_the_thinking():
    _, table, outcomes = _walked(REPO / "examples" / "reasoning-1.5b")
    waits = [[p for p in pieces(o.segments) if p[1] == WAIT_CUE] for o in outcomes]
    assert sum(map(len, waits)) == int((table["requests"] - 2).sum()) > 100
    assert all(p[0] == THINKING and p[2] == "\nWait," for found in waits for p in found)


def test_a_lean_outcome_grades_as_the_full_one_without_holding_its_text():
    """What a stage keeps per sample (chain.lean): the same table row, a bounded amount of text."""
    from harness.requests.chain import GIST, Job, Outcome, lean
    from harness.stages.sample import sample_row

    job = Job("p1", "What is 1 + 2?", "3", 256, 0)
    thinking = "step " * 20_000
    outcomes = [
        Outcome(job, 1, text=f"<think>{thinking}</think> so \\boxed{{3}}", reasoning=thinking, answer="\\boxed{3}",
                finish_reason="stop", completion_tokens=20_003, parts=[{"text": thinking}],
                segments=[("model", thinking)]),
        Outcome(job, 1, text="   \n ", finish_reason="length", completion_tokens=3),  # blank: stays blank
        Outcome(job, 1, text=thinking, reasoning=thinking, finish_reason="length", completion_tokens=20_000),
    ]
    for full in outcomes:
        slim = lean(full)
        assert sample_row(slim) == sample_row(full)
        assert not slim.parts and not slim.segments
        assert len(slim.text) <= 2 * GIST and len(slim.reasoning) <= 2 * GIST
