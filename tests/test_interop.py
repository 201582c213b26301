"""Other tools' samples imported as runs: the harness JSONL schema and lm-eval's own output (a fixture
lm-eval 0.4.13 wrote against the loopback test server, tests/fixtures/lm_eval/README.md)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO

from harness.cli import main
from harness.requests.store import count_records

LM_EVAL = REPO / "tests" / "fixtures" / "lm_eval"
LM_EVAL_SAMPLES = sorted(LM_EVAL.glob("samples_toy_arith_*.jsonl"))
REPLAY_STAGES = ("fetch", "calibrate", "sample", "vote")


def replay(run: Path, monkeypatch) -> pd.DataFrame:
    """Every stage up to the vote in `run`, with requests forbidden: the store must hold every response."""
    monkeypatch.chdir(run)
    monkeypatch.setenv("HARNESS_NO_REQUESTS", "1")
    before = count_records(run / "store")
    for stage in REPLAY_STAGES:
        assert main([stage]) == 0
    assert count_records(run / "store") == before  # nothing was asked, nothing added
    return pd.read_csv(run / "outputs" / "samples.csv", dtype={"problem_id": str})


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def own_rows() -> list[dict]:
    """Two problems, two budgets, pools of 2: reasoning and logged tokens on some lines, not on others."""
    rows = []
    for pid, gold in (("a", "12"), ("b", "7")):
        for budget in (100, 200):
            rows.append({"problem_id": pid, "budget": budget, "prompt": f"Q {pid}", "gold": gold,
                         "response": f"So \\boxed{{{gold}}}", "reasoning": "think " * 5, "completion_tokens": 40,
                         "reasoning_tokens": 30})
            rows.append({"problem_id": pid, "budget": budget, "prompt": f"Q {pid}", "gold": gold,
                         "response": "The answer is 99."})
    return rows


def test_own_jsonl_becomes_a_run_that_replays_with_no_request(tmp_path, monkeypatch, capsys):
    source = write_jsonl(tmp_path / "mine.jsonl", own_rows())
    assert main(["import", "jsonl", str(source), "--into", str(tmp_path / "run"), "--model", "my-model"]) == 0
    assert "8 samples of 2 problems at budgets [100, 200]" in capsys.readouterr().out
    samples = replay(tmp_path / "run", monkeypatch)
    assert len(samples) == 8
    assert samples["correct"].tolist() == [True, False] * 4  # graded here: the boxed gold, then a wrong 99
    assert samples["tokens_counted"].tolist() == ["logged", "estimated"] * 4
    assert samples["completion_tokens"].tolist()[:2] == [40, 5]  # logged; "The answer is 99." is 17 bytes -> 5
    assert samples["reasoning_tokens"].tolist()[0] == 30
    curve = pd.read_csv(tmp_path / "run" / "outputs" / "curve.csv")
    assert curve.query("k == 1")["maj_at_k"].tolist() == [0.5, 0.5]


def test_own_jsonl_takes_the_budget_from_the_flag_and_numbers_samples_in_file_order(tmp_path, monkeypatch):
    rows = [{k: v for k, v in r.items() if k != "budget"} for r in own_rows() if r["budget"] == 100]
    source = write_jsonl(tmp_path / "mine.jsonl", rows)
    assert main(["import", "jsonl", str(source), "--into", str(tmp_path / "run"), "--budget", "512"]) == 0
    samples = replay(tmp_path / "run", monkeypatch)
    assert samples["budget"].unique().tolist() == [512]
    assert samples["sample"].tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize(("content", "message"), [
    ("not json at all\n", "mine.jsonl:1: not JSON; expected one JSON object a line with problem_id, budget"),
    ('[1, 2]\n', "mine.jsonl:1: not a JSON object; expected"),
    ('{"problem_id": "a", "prompt": "Q", "response": "R", "gold": "1"}\n',
     "no budget; add `budget` to every line or give --budget N"),
    ('{"problem_id": "a", "budget": 8, "prompt": "Q", "response": "R"}\n', "mine.jsonl:1: missing gold"),
    ('{"problem_id": "a", "budget": 8, "prompt": "Q", "response": "R", "gold": null}\n',
     "problem 'a' sample 0 has no gold answer"),
    ('{"problem_id": "a", "budget": "lots", "prompt": "Q", "response": "R", "gold": "1"}\n',
     "budget = 'lots' must be a non-negative integer"),
    ('{"doc_id": 0, "resps": [["x"]], "target": "1"}\n',
     "looks like lm-eval's output, not the harness JSONL schema; use `harness import lm-eval`"),
])
def test_bad_jsonl_stops_with_one_line_before_anything_is_written(tmp_path, capsys, content, message):
    source = tmp_path / "mine.jsonl"
    source.write_text(content, encoding="utf-8")
    assert main(["import", "jsonl", str(source), "--into", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_an_import_never_overwrites_a_run_without_force(tmp_path, capsys):
    source = write_jsonl(tmp_path / "mine.jsonl", own_rows())
    run = tmp_path / "run"
    assert main(["import", "jsonl", str(source), "--into", str(run)]) == 0
    (run / "notes.txt").write_text("mine")
    before = (run / "store" / "imported.jsonl").read_bytes()
    write_jsonl(source, own_rows()[:4])
    assert main(["import", "jsonl", str(source), "--into", str(run)]) == 2
    assert "already holds a run (imported.json, params.yaml, problems.jsonl, store); choose another --into, " \
           "or add --force" in capsys.readouterr().err
    assert (run / "store" / "imported.jsonl").read_bytes() == before
    assert main(["import", "jsonl", str(source), "--into", str(run), "--force"]) == 0
    assert count_records(run / "store") == 4  # replaced, not added to
    assert (run / "notes.txt").read_text() == "mine"  # only what an import writes is replaced


def test_lm_eval_output_is_one_pool_per_budget_with_one_line_per_document(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["import", "lm-eval", *map(str, LM_EVAL_SAMPLES), "--into", str(run)]) == 0
    out = capsys.readouterr().out
    # 2 files x 4 documents x 2 filters = 16 lines; each document once per file, its 3 repeats the pool
    assert "24 samples of 4 problems at budgets [32, 64] (toy-arith, task toy_arith)" in out
    assert "24 estimated" in out
    samples = replay(run, monkeypatch)
    assert sorted(samples["problem_id"].unique()) == ["toy-0", "toy-1", "toy-2", "toy-3"]  # the docs' own ids
    assert (samples["tokens_counted"] == "estimated").all()
    assert samples.groupby("budget").size().to_dict() == {32: 12, 64: 12}
    assert main(["report"]) == 0  # the page says the tokens are estimated, in the run's label
    assert "toy-arith · cap · problems.jsonl · tokens estimated (24)" in (run / "outputs" / "report.html").read_text()
    lines = [json.loads(line) for path in LM_EVAL_SAMPLES for line in path.read_text().splitlines()]
    first = [line for line in lines if line["filter"] == "first"]
    k1 = sum(text == f"The answer is {line['target']}." for line in first for text in line["resps"][0])
    curve = pd.read_csv(run / "outputs" / "curve.csv")
    assert curve.query("k == 1")["maj_at_k"].tolist() == pytest.approx([k1 / 24] * 2)
    # lm-eval's own maj@3 (its results json) is our maj@3: no pool of 3 has a tie between two answers
    results = json.loads(next(LM_EVAL.glob("results_*.json")).read_text())
    assert curve.query("k == 3")["maj_at_k"].tolist() == pytest.approx(
        [results["results"]["toy_arith"]["exact_match,maj@3"]] * 2)


def test_lm_eval_import_of_several_tasks_asks_for_one(tmp_path, capsys):
    other = tmp_path / LM_EVAL_SAMPLES[0].name.replace("toy_arith", "toy_other")
    shutil.copy(LM_EVAL_SAMPLES[0], other)
    files = [str(LM_EVAL_SAMPLES[0]), str(other)]
    assert main(["import", "lm-eval", *files, "--into", str(tmp_path / "run")]) == 2
    assert "the files hold 2 tasks (toy_arith, toy_other); one run is one task: import each with --task NAME" \
        in capsys.readouterr().err
    assert main(["import", "lm-eval", *files, "--into", str(tmp_path / "run"), "--task", "toy_other"]) == 0
    assert "12 samples of 4 problems at budgets [32] (lm-eval, task toy_other)" in capsys.readouterr().out


def test_lm_eval_import_rejects_other_files_and_asks_for_a_missing_budget(tmp_path, capsys):
    stray = tmp_path / "notes.jsonl"
    stray.write_text("{}\n")
    assert main(["import", "lm-eval", str(stray), "--into", str(tmp_path / "run")]) == 2
    assert "notes.jsonl: not named samples_<task>_<date>.jsonl; expected lm-eval's" in capsys.readouterr().err
    line = json.loads(LM_EVAL_SAMPLES[0].read_text().splitlines()[0])
    del line["arguments"]["gen_args_0"]["arg_1"]["max_gen_toks"]
    bare = write_jsonl(tmp_path / LM_EVAL_SAMPLES[0].name, [line])
    assert main(["import", "lm-eval", str(bare), "--into", str(tmp_path / "run")]) == 2
    assert "no arguments.gen_args_0.arg_1.max_gen_toks to take the budget from; give it with --budget N" \
        in capsys.readouterr().err
    assert main(["import", "lm-eval", str(bare), "--into", str(tmp_path / "run"), "--budget", "48"]) == 0


def test_compare_pairs_an_import_with_a_run_of_the_same_problems_under_distinct_labels(tmp_path, monkeypatch,
                                                                                        capsys):
    """lm-eval's fixture imported twice (the same model, method and source: one default label) is compared by
    problem: the labels get the directory names, and the pairs are the four shared problems."""
    for name in ("from_lm_eval", "again"):
        assert main(["import", "lm-eval", *map(str, LM_EVAL_SAMPLES), "--into", str(tmp_path / name)]) == 0
        replay(tmp_path / name, monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "from_lm_eval", "again"]) == 0
    report = json.loads((tmp_path / "outputs" / "compare.json").read_text())
    pair = report["pairs"][0] if "pairs" in report else report["paired"][0]
    assert pair["a"] == "toy-arith · cap · problems.jsonl (from_lm_eval)"
    assert pair["b"] == "toy-arith · cap · problems.jsonl (again)"
    assert pair["problems"] == 4


def test_compare_refuses_an_import_whose_ids_name_other_problems(tmp_path, monkeypatch, capsys):
    """Across tools the prompts differ (templates), so an imported run is paired on its ids and gold answers."""
    rows = [{"problem_id": f"toy-{i}", "budget": 32, "prompt": f"Please: {i}", "response": "The answer is 1.",
             "gold": "1"} for i in range(4)]
    write_jsonl(tmp_path / "mine.jsonl", rows)
    assert main(["import", "jsonl", str(tmp_path / "mine.jsonl"), "--into", str(tmp_path / "mine")]) == 0
    assert main(["import", "lm-eval", *map(str, LM_EVAL_SAMPLES), "--into", str(tmp_path / "lm")]) == 0
    for name in ("mine", "lm"):
        replay(tmp_path / name, monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "mine", "lm"]) == 2
    assert "4 of the 4 shared problem ids have different gold answers, e.g. toy-0; the ids must name the same " \
           "problems" in capsys.readouterr().err


@pytest.mark.embedded
def test_lm_eval_tokens_counted_with_the_model_vocabulary(tmp_path, monkeypatch, capsys):
    """--tokenizer: the embedded model's GGUF vocabulary counts every generation (llama-cpp-python, the
    vocabulary alone), and samples.csv names the file it counted with."""
    from llama_cpp import Llama

    from harness.servers.embedded import model_path

    gguf = model_path()
    run = tmp_path / "run"
    assert main(["import", "lm-eval", *map(str, LM_EVAL_SAMPLES), "--into", str(run), "--tokenizer", str(gguf)]) == 0
    assert f"24 tokenizer:{gguf.name}" in capsys.readouterr().out
    samples = replay(run, monkeypatch)
    assert (samples["tokens_counted"] == f"tokenizer:{gguf.name}").all()
    vocab = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    lines = [json.loads(line) for path in LM_EVAL_SAMPLES for line in path.read_text().splitlines()]
    texts = {(d["doc"]["id"], d["arguments"]["gen_args_0"]["arg_1"]["max_gen_toks"], i): text
             for d in lines for i, text in enumerate(d["resps"][0])}
    expected = [len(vocab.tokenize(texts[r.problem_id, r.budget, r.sample].encode(), add_bos=False, special=False))
                for r in samples.itertuples()]
    assert samples["completion_tokens"].tolist() == expected
    assert expected != [5] * 24  # not the bytes/4 estimate


def test_lm_eval_tokenizer_that_is_missing_stops_with_one_line(tmp_path, capsys):
    missing = tmp_path / "model.gguf"
    assert main(["import", "lm-eval", str(LM_EVAL_SAMPLES[0]), "--into", str(tmp_path / "run"),
                 "--tokenizer", str(missing)]) == 2
    assert f"--tokenizer {missing}: no such file; give the model's .gguf file" in capsys.readouterr().err


def eee_row(sample_id: str, responses: list[str], gold: str, **extra) -> dict:
    """An Every Eval Ever instance row (instance_level_eval.schema.json 0.2.1, single_turn)."""
    return {"schema_version": "instance_level_eval_0.2.1", "evaluation_id": "e1", "model_id": "org/model",
            "evaluation_name": "toy", "sample_id": sample_id, "interaction_type": "single_turn",
            "input": {"raw": f"Q {sample_id}", "reference": [gold]}, "output": {"raw": responses},
            "answer_attribution": [], "evaluation": {"score": 1.0, "is_correct": True}, **extra}


def test_every_eval_ever_rows_import_as_pools(tmp_path, monkeypatch, capsys):
    rows = [eee_row("a", ["\\boxed{3}", "\\boxed{4}"], "3", metadata={"token_budget": "64"}),
            eee_row("b", ["The answer is 5."], "5", metadata={"token_budget": "64"},
                    token_usage={"input_tokens": 9, "output_tokens": 7, "total_tokens": 16})]
    rows[1]["output"]["raw"].append("The answer is 5.")
    source = write_jsonl(tmp_path / "eee.jsonl", rows)
    assert main(["import", "jsonl", str(source), "--into", str(tmp_path / "run")]) == 0
    samples = replay(tmp_path / "run", monkeypatch)
    assert samples["correct"].tolist() == [True, False, True, True]
    assert samples["budget"].unique().tolist() == [64]
    del rows[0]["metadata"]
    write_jsonl(source, rows[:1])
    assert main(["import", "jsonl", str(source), "--into", str(tmp_path / "other")]) == 2
    assert "eee.jsonl:1: no metadata.token_budget; give the budget with --budget N" in capsys.readouterr().err


def test_export_without_inspect_ai_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    """inspect-ai is an optional extra: where it is missing (sys.modules entries of None make its import fail,
    as in the main lock's environments), the command says how to get it, in one line."""
    for name in ("inspect_ai", "inspect_ai.log"):
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["import", "lm-eval", str(LM_EVAL_SAMPLES[0]), "--into", str(tmp_path / "run")]) == 0
    monkeypatch.chdir(tmp_path / "run")
    assert main(["export", "inspect"]) == 2
    assert capsys.readouterr().err == ("harness: inspect-ai is not installed: pip install 'scaling-harness[interop]' "
                                       "(or `nox -s interop`), then rerun\n")
    assert not (tmp_path / "run" / "logs").exists()
