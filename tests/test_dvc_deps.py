"""dvc.yaml must never let a stage reuse a result computed by other code.

Each stage's deps must cover every harness module it runs: the import closure of `harness/cli.py` and the
stage's module, lazy imports inside functions included (they run too), derived from the source with `ast`.
A plain `dvc status` must then see an edit to a module the stage only imports transitively.
"""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import REPO
from gitrepo import copy_repo, run
from imports import import_closure


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def test_the_closure_follows_lazy_and_transitive_imports():
    closure = import_closure("cli", "stages.fetch")
    assert "harness/budget_axis.py" in closure  # fetch -> params -> budget_axis
    assert "harness/data.py" in closure  # fetch -> data
    assert "harness/analysis/stats.py" in import_closure("cli", "stages.calibrate")
    assert "harness/report/grid.py" in import_closure("cli", "stages.report")  # report -> report.build -> grid


@pytest.mark.parametrize("stage", list(_stages()))
def test_each_stage_depends_on_every_module_it_imports(stage):
    spec = _stages()[stage]
    assert spec["cmd"] == f"harness {stage}", "this test derives the entry module from `harness <stage>`"
    deps = [d if isinstance(d, str) else next(iter(d)) for d in spec.get("deps", [])]
    missing = sorted(p for p in import_closure("cli", f"stages.{stage}") if not _covered(p, deps))
    assert not missing, f"dvc.yaml stage {stage}: deps miss {missing}; a change there would reuse a stale result"


def test_editing_a_transitively_imported_module_marks_the_stages_changed(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    assert json.loads(run("dvc", "status", "--json", cwd=repo) or "{}") == {}, "the committed dvc.lock is stale"
    with (repo / "harness" / "budget_axis.py").open("a", encoding="utf-8") as f:
        f.write("\n# an edit\n")
    changed = json.loads(run("dvc", "status", "--json", cwd=repo))
    for stage in _stages():  # every stage's closure holds budget_axis.py (via params.py)
        assert stage in changed, f"{stage} not marked changed after editing harness/budget_axis.py: {changed}"
    pycache = repo / "harness" / "__pycache__"
    pycache.mkdir(exist_ok=True)
    (pycache / "x.cpython-311.pyc").write_bytes(b"bytecode")
    (repo / "harness" / "budget_axis.py").write_text((REPO / "harness" / "budget_axis.py").read_text(encoding="utf-8"))
    assert json.loads(run("dvc", "status", "--json", cwd=repo) or "{}") == {}, "bytecode must not count as a change"
