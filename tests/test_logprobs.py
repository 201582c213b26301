"""Confidence-weighted votes end to end over real HTTP: log-probabilities asked for, stored and used by the confidence-weighted
vote; the stopping rules and the thinking measurements in metrics.json, frontier.csv and the figures; and
the one line that says why there is no confidence vote where a provider gives no log-probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.params import ParamsError, load_params


def _stored() -> list[dict]:
    return [json.loads(line) for line in Path("store/sample.jsonl").read_text().splitlines() if line.strip()]


def test_forcing_with_logprobs_stores_them_and_the_confidence_vote_uses_them(project, fake_model, capsys):
    project(fake_model.url, sampling={"logprobs": True})
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    bodies = [r["body"] for r in fake_model.requests]
    assert bodies and all(b["logprobs"] == 1 and "top_logprobs" not in b for b in bodies)  # completions' field
    assert any(b["prompt"].endswith("\\boxed{") for b in bodies)  # the forced answers asked for them too
    records = [r["response"] for r in _stored() if "response" in r]
    assert records and all(len(r["logprobs"]["tokens"]) == len(r["logprobs"]["token_logprobs"]) for r in records
                           if r.get("text"))
    samples = pd.read_csv("outputs/samples.csv")
    assert samples["answer_logprob"].notna().all() and (samples["answer_logprob"] < 0).all()
    assert "sampling.logprobs: 72 of 72 samples have the answer's log-probability" in out
    metrics = json.loads(Path("outputs/metrics.json").read_text())
    vote = metrics["confidence_vote"]
    assert vote["budget"] == 64 and set(vote["by_k"]) == {"1", "2", "4", "6"}
    one = vote["by_k"]["1"]
    assert one["change"] == 0.0 and one["weighted_maj_at_k"] == one["maj_at_k"]  # one vote: weights change nothing
    for row in vote["by_k"].values():
        assert row["change"] == pytest.approx(row["weighted_maj_at_k"] - row["maj_at_k"], abs=2e-6)
        assert row["change_lo"] <= row["change"] <= row["change_hi"]
    assert metrics["maj_at_k"]["6"] == vote["by_k"]["6"]["maj_at_k"]  # the same plain maj@k as the curve


def test_llama_server_s_chat_shaped_logprobs_on_completions_are_read_too(project, fake_model):
    """llama.cpp's llama-server answers /v1/completions' `logprobs` as `content[]` (the chat shape), not
    OpenAI's `tokens` / `token_logprobs`: read by shape, they are stored and used all the same."""
    fake_model.logprobs_shape = "llama.cpp"
    project(fake_model.url, sampling={"logprobs": True})
    assert main(["run"]) == 0
    records = [r["response"] for r in _stored() if "response" in r]
    assert records and all(r["logprobs"]["tokens"] and len(r["logprobs"]["tokens"]) == len(r["logprobs"]["token_logprobs"])
                           for r in records if r.get("text"))
    assert pd.read_csv("outputs/samples.csv")["answer_logprob"].notna().all()


def test_chat_asks_for_logprobs_without_alternatives(project, fake_model):
    project(fake_model.url, budgets={"method": "prompt", "requested": [16, 64]},
            sampling={"samples": 2, "vote_samples": 4, "logprobs": True})
    assert main(["run"]) == 0
    assert all(r["body"]["logprobs"] is True and r["body"]["top_logprobs"] == 0 for r in fake_model.requests)
    assert pd.read_csv("outputs/samples.csv")["answer_logprob"].notna().all()
    assert "by_k" in json.loads(Path("outputs/metrics.json").read_text())["confidence_vote"]


def test_reasoning_models_get_no_logprobs_field_and_the_vote_says_why_in_one_line(project, fake_model, capsys):
    """OpenAI's o-series reject `logprobs` (the fake server answers 400 like them): never sent under effort."""
    project(fake_model.url, budgets={"method": "effort", "requested": ["low", "high"]},
            sampling={"samples": 2, "vote_samples": 4, "logprobs": True, "temperature": None, "top_p": None})
    assert main(["run"]) == 0
    assert fake_model.requests and not any("logprobs" in r["body"] for r in fake_model.requests)
    out = capsys.readouterr().out
    assert "OpenAI's reasoning models (o-series) return no log-probabilities" in out
    skipped = json.loads(Path("outputs/metrics.json").read_text())["confidence_vote"]["skipped"]
    assert skipped.startswith("OpenAI's reasoning models (o-series, budgets.method effort) return no")


def test_without_logprobs_the_tables_keep_their_columns_and_the_vote_says_how_to_get_them(project, fake_model):
    project(fake_model.url)
    assert main(["run"]) == 0
    assert "answer_logprob" not in pd.read_csv("outputs/samples.csv").columns
    assert not any("logprobs" in r["body"] for r in fake_model.requests)
    metrics = json.loads(Path("outputs/metrics.json").read_text())
    assert "set sampling.logprobs: true" in metrics["confidence_vote"]["skipped"]
    # the stopping rules and the thinking measurements need no log-probabilities
    rules = metrics["adaptive"]["rules"]
    assert set(rules) == {"unanimity w=2", "unanimity w=3", "posterior p=0.9", "posterior p=0.95"}
    at64 = rules["unanimity w=2"]["by_budget"]["64"]
    assert 2 <= at64["mean_samples"] <= 6 and at64["whole_pool"]["mean_samples"] == 6
    assert at64["estimator"] in ("exact", "sampled") and at64["mc_se"] >= 0
    thinking = metrics["thinking"]["by_budget"]
    assert set(thinking) == {"4", "16", "64"}
    assert thinking["4"]["capped_share"] == 1.0  # the toy model needs 8+ tokens: every 4-token budget is hit
    every = pd.read_csv("outputs/strategies.csv")
    assert set(rules) <= set(every["rule"]) and "fixed" in set(every["rule"])
    front = pd.read_csv("outputs/frontier.csv")  # the points of strategies.csv nothing beats
    assert len(front) == int(every["on_frontier"].sum()) and set(front["rule"]) <= set(every["rule"])
    assert Path("outputs/thinking_tokens.png").stat().st_size > 1000


@pytest.mark.parametrize(("vote", "message"), [
    ({"adaptive": {"unanimity_window": [0]}}, "vote.adaptive.unanimity_window[0] = 0: a window is a positive"),
    ({"adaptive": {"posterior_threshold": [0.95, 1.0]}}, "vote.adaptive.posterior_threshold[1] = 1.0: a threshold"),
    ({"adaptive": {"posterior_threshold": [0.9, 0.9]}}, "lists a threshold twice"),
    ({"adaptive": {"max_samples": 0}}, "vote.adaptive.max_samples = 0"),
    ({"adaptive": {"windows": [2]}}, "vote.adaptive.windows: unknown key"),
])
def test_bad_stopping_rules_are_one_line_before_anything_runs(tmp_path, vote, message):
    import yaml

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"vote": vote}), encoding="utf-8")
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert message in str(info.value), str(info.value)


def test_logprobs_must_be_a_yes_or_no(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("sampling:\n  logprobs: 5\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="sampling.logprobs = 5"):
        load_params(path)
