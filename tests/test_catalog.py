"""Named datasets: the seed's AIME 2024 selection, from a local copy or from Hub-shaped rows, is the same."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from conftest import DATA

from harness.cli import main
from harness.data import CATALOG, DataError, canonical_rows, fingerprint, load_named

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


def test_hub_shaped_rows_through_the_real_datasets_library_give_the_same_selection(tmp_path):
    """The Hub copy has 90 rows (AIME 2022-2024), a `url` column and zero-padded answers ("025")."""
    rows = [{"id": i, "problem": f"An older problem {i}", "solution": "", "answer": "007",
             "url": f"https://artofproblemsolving.com/wiki/index.php/202{2 + i // 30}_AIME_I_Problems"}
            for i in range(60)]
    rows += [{"id": r["id"], "problem": r["problem"], "solution": r["solution"],
              "answer": r["answer"].zfill(3), "url": r["source_url"]} for r in _rows("aime2024")]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    hub = datasets.load_dataset("json", data_files=str(path), split="train")
    problems = canonical_rows("aime2024", [dict(r) for r in hub])
    assert fingerprint(problems) == AIME2024_FINGERPRINT


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
