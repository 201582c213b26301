"""Named datasets: the seed's AIME 2024 selection, from a local copy or from Hub-shaped rows, is the same."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import datasets
import pytest
from conftest import DATA

from harness.cli import main
from harness.data import CATALOG, DataError, fingerprint, load_named, read_hub

AIME2024_FINGERPRINT = "05373404f88afaee4619f834c79a0890d33562343e1e29cd41a1d63486f81719"


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / f"{name}.jsonl").read_text().splitlines()]


DATA_SHA256 = {  # as data/README.md states them
    "aime2024": "9bb96208058a7fd00ca4174c1446987e8a8433c7647bfb5d77b071cd5b7aa852",
    "aime2025": "7aad85d35dd2b76c4249a4a5e41c771b1e74843d3317b9583496845155a2805c",
    "math500": "70c3560b38552e340804ec21b6a5c9be0309dff3df1a31755cd3ff3333602c0a",
}


@pytest.mark.parametrize("name", sorted(DATA_SHA256))
def test_committed_data_files_match_the_sha256_their_readme_states(name):
    import hashlib

    digest = hashlib.sha256((DATA / f"{name}.jsonl").read_bytes()).hexdigest()
    assert digest == DATA_SHA256[name]
    assert f"`{name}.jsonl`" in (DATA / "README.md").read_text() and digest in (DATA / "README.md").read_text()


def test_local_aime2024_is_the_seeds_30_problems_with_the_documented_fingerprint():
    problems = load_named("aime2024", str(DATA / "aime2024.jsonl"))
    assert len(problems) == 30
    assert [p["id"] for p in problems] == [str(i) for i in range(60, 90)]
    assert fingerprint(problems) == AIME2024_FINGERPRINT


def _hub_copy(directory: Path) -> Path:
    """A local dataset directory shaped like the Hub's AI-MO/aimo-validation-aime, written by `datasets`:
    90 rows (AIME 2022-2024), a `url` column and zero-padded answers ("025"), in train.parquet."""
    rows = [{"id": i, "problem": f"An older problem {i}", "solution": "", "answer": "007",
             "url": f"https://artofproblemsolving.com/wiki/index.php/202{2 + i // 30}_AIME_I_Problems"}
            for i in range(60)]
    rows += [{"id": r["id"], "problem": r["problem"], "solution": r["solution"],
              "answer": r["answer"].zfill(3), "url": r["source_url"]} for r in _rows("aime2024")]
    directory.mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(directory / "train.parquet"))
    return directory


def test_hub_shaped_rows_through_the_real_datasets_library_give_the_same_selection(
        project, fake_model, tmp_path, monkeypatch):
    """read_hub and the fetch stage, with `datasets.load_dataset` reading a local dataset directory where
    the catalog names the Hub id: the seed's 30 problems, the documented fingerprint."""
    hub = _hub_copy(tmp_path / "aimo-validation-aime")
    monkeypatch.setitem(CATALOG, "aime2024", dataclasses.replace(CATALOG["aime2024"], hub_id=str(hub)))
    assert len(read_hub("aime2024", "ignored: the catalog names the split")) == 90
    project(fake_model.url, data={"source": "aime2024", "path": None, "limit": None})
    assert main(["fetch"]) == 0
    info = json.loads(Path("outputs/dataset.json").read_text())
    assert info == {"fingerprint": AIME2024_FINGERPRINT, "problems": 30, "source": "aime2024"}


def test_a_parquet_copy_at_data_path_gives_the_same_selection(tmp_path):
    """load_named's .parquet branch, on the file `datasets` wrote (pandas reads it back)."""
    parquet = _hub_copy(tmp_path / "copy") / "train.parquet"
    assert fingerprint(load_named("aime2024", str(parquet))) == AIME2024_FINGERPRINT


def test_any_hub_dataset_id_goes_through_load_hub(project, fake_model, tmp_path):
    """A dataset that is not in the catalog: load_hub maps unique_id / problem / answer (MATH-500's
    columns) at data.split, here from a local dataset directory that `datasets` resolves like a Hub id."""
    rows = [{"unique_id": f"test/algebra/{i}.json", "problem": f"What is {i} + {i}?", "answer": str(2 * i),
             "level": 3} for i in range(5)]
    (tmp_path / "hub" / "math-like").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "hub" / "math-like" / "test.parquet"))
    project(fake_model.url, data={"source": "hub/math-like", "split": "test", "limit": None, "answer_type": "any"})
    assert main(["fetch"]) == 0
    fetched = [json.loads(line) for line in Path("outputs/problems.jsonl").read_text().splitlines()]
    assert fetched == [{"id": r["unique_id"], "problem": r["problem"], "answer": r["answer"]} for r in rows]


@pytest.mark.parametrize(("source", "message"), [
    ("aime2024", ("data.source = 'aime2024': could not load scaling-harness-tests/no-such-aime from the Hugging "
                  "Face Hub ({}); offline, set data.path to a local .jsonl/.parquet copy")),
    ("scaling-harness-tests/no-such-dataset", ("data.source = 'scaling-harness-tests/no-such-dataset': could not "
     "load from the Hugging Face Hub ({}); offline, point data.source at a local .jsonl with id, problem, answer")),
])
def test_offline_the_hub_says_what_to_use_instead(source, message, project, fake_model, monkeypatch, capsys):
    """No network (datasets' own offline switches on): one line naming the local alternative. Ids that
    exist nowhere, so no cached copy can answer instead."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setitem(CATALOG, "aime2024", dataclasses.replace(CATALOG["aime2024"],
                                                                 hub_id="scaling-harness-tests/no-such-aime"))
    with pytest.raises(DataError) as raised:
        read_hub(source, "test")
    error = str(raised.value)
    kind = error.split("Hub (", 1)[1].split(")", 1)[0]
    assert error == message.format(kind)
    project(fake_model.url, data={"source": source, "limit": None, "answer_type": "any"})
    assert main(["fetch"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message.format(kind))


def test_a_selection_of_the_wrong_size_fails_loudly(tmp_path):
    path = tmp_path / "aime.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows("aime2024")[:29]))
    with pytest.raises(DataError, match="has 29 problems, expected exactly 30"):
        load_named("aime2024", str(path))


@pytest.mark.parametrize(("name", "count"), [("aime2025", 30), ("math500", 500)])
def test_other_named_datasets_load_from_their_local_copies(name, count):
    problems = load_named(name, str(DATA / f"{name}.jsonl"))
    assert len(problems) == count and len({p["id"] for p in problems}) == count


def test_fetch_records_the_fingerprint(project, fake_model):
    path = project(fake_model.url, data={"source": "aime2024", "path": str(DATA / "aime2024.jsonl")})
    assert path.exists()
    assert main(["fetch"]) == 0
    info = json.loads(Path("outputs/dataset.json").read_text())
    assert info["fingerprint"] == AIME2024_FINGERPRINT and info["problems"] == 30


def test_data_path_without_a_named_dataset_is_refused(project, fake_model, capsys):
    project(fake_model.url, data={"path": str(DATA / "aime2024.jsonl")})
    assert main(["fetch"]) == 2
    assert "data.path" in capsys.readouterr().err


def test_every_named_dataset_params_accepts_is_in_the_catalog():
    """params.py names the datasets without importing the data layer; the catalog must describe each."""
    from harness.params import NAMED_DATASETS

    assert set(NAMED_DATASETS) == set(CATALOG)


def test_a_local_copy_that_is_not_utf8_is_one_line_with_its_line_number(project, fake_model, tmp_path, capsys):
    path = tmp_path / "aime.jsonl"
    path.write_bytes(b'{"id": 1, "problem": "caf\xe9", "answer": "1", "url": "2024"}\n')
    project(fake_model.url, data={"source": "aime2024", "path": str(path)})
    assert main(["fetch"]) == 2
    assert f"{path}:1: not UTF-8 (byte 0xe9)" in capsys.readouterr().err
