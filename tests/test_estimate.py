"""`harness estimate` prices the problems params.yaml selects now, never the ones a previous fetch left in
outputs/problems.jsonl; a source it cannot load stops it before anything is priced."""

from __future__ import annotations

from pathlib import Path

from conftest import DATA

from harness.cli import main


def _estimate(capsys) -> list[str]:
    assert main(["estimate"]) == 0
    return capsys.readouterr().out.splitlines()


def _total_samples(lines: list[str]) -> int:
    """The `missing samples` column of the total row."""
    return int(next(line for line in lines if line.startswith("total")).split()[1])


def _fetched() -> int:
    return len(Path("outputs/problems.jsonl").read_text(encoding="utf-8").splitlines())


def test_a_stale_fetch_is_not_priced_the_selection_params_make_now_is(project, fake_model, capsys):
    """30 problems on disk from an earlier fetch; params now select 6 of another source, then 50 of the
    first. Each time the estimate names what it prices, and its sample count is what the run will send."""
    chain_sum = {"source": "reasoning_gym:chain_sum", "limit": 30, "answer_type": "integer"}
    project(fake_model.url, data=chain_sum)
    assert main(["fetch"]) == 0 and _fetched() == 30
    capsys.readouterr()
    fresh = _estimate(capsys)
    assert fresh[0].startswith("estimate: 30 problems of reasoning_gym:chain_sum; fake via ")
    pool = _total_samples(fresh) // 30  # samples per problem over every budget (calibration included)
    assert pool * 30 == _total_samples(fresh) and "note:" not in fresh[1]

    project(fake_model.url, data={**chain_sum, "source": str(Path("problems.jsonl").resolve()), "limit": None})
    other = _estimate(capsys)
    assert other[0].startswith("estimate: 6 problems of ") and "problems.jsonl" in other[0]
    assert other[1] == ("note: outputs/problems.jsonl holds 30 problems of an earlier selection; priced are the "
                        "6 params.yaml selects now (`harness fetch` or `harness run` writes them)")
    assert _total_samples(other) == 6 * pool

    project(fake_model.url, data={**chain_sum, "limit": 50})
    more = _estimate(capsys)
    assert more[0].startswith("estimate: 50 problems of reasoning_gym:chain_sum;") and "30 problems" in more[1]
    assert _total_samples(more) == 50 * pool
    assert main(["fetch"]) == 0 and _fetched() == 50  # the fetch writes exactly what was priced
    capsys.readouterr()
    assert _estimate(capsys) == [more[0], *more[2:]]  # the same figures, now without the note
    assert fake_model.requests == []  # a dry run: nothing was sent


def test_a_source_that_cannot_be_loaded_stops_the_estimate_before_anything_is_priced(
        project, fake_model, capsys, monkeypatch, tmp_path):
    """math500 from the Hub, offline, with 30 other problems on disk: the loader's own message, and no
    table (pricing the 30 would be the silent 17x underestimate)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))  # no cached copy to fall back on
    project(fake_model.url, data={"source": "reasoning_gym:chain_sum", "limit": 30, "answer_type": "integer"})
    assert main(["fetch"]) == 0
    capsys.readouterr()
    project(fake_model.url, data={"source": "math500", "limit": None, "answer_type": "any"})
    assert main(["estimate"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines()[-1].endswith(
        "estimate: nothing priced: data.source = 'math500': could not load HuggingFaceH4/MATH-500 from the "
        "Hugging Face Hub (ConnectionError); offline, set data.path to a local .jsonl/.parquet copy"), err
    project(fake_model.url, data={"source": "math500", "path": str(DATA / "math500.jsonl"), "limit": None,
                                  "answer_type": "any"})
    assert _estimate(capsys)[0].startswith(f"estimate: 500 problems of math500 at {DATA / 'math500.jsonl'}; ")
    assert fake_model.requests == []
