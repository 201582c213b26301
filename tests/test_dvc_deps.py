"""dvc.yaml must never let a stage reuse a result computed by other code.

Each stage's deps must cover every harness module it runs: the import closure of `harness/cli.py` and the
stage's module, lazy imports inside functions included (they run too), derived from the source with `ast`.
A plain `dvc status` must then see an edit to a module the stage only imports transitively.
"""

from __future__ import annotations

import ast
import json

import pytest
import yaml
from conftest import REPO
from gitrepo import copy_repo, run

PACKAGE = REPO / "harness"
STAGE_MODULE = {"fetch": "data"}  # as harness/cli.py maps a stage to its module; else the stage's name


def _imported(module: str) -> set[str]:
    """harness modules one module imports anywhere in its source (relative or absolute)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1 or base.startswith("harness"):
                base = base.removeprefix("harness").lstrip(".")
                if base:
                    found.add(base.split(".")[0])
                else:  # from . import stats, grade
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("harness."))
    return {m for m in found if (PACKAGE / f"{m}.py").exists()}


def import_closure(*entries: str) -> set[str]:
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(_imported(module) - seen)
    return {f"harness/{m}.py" for m in seen}


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def test_the_closure_follows_lazy_and_transitive_imports():
    closure = import_closure("cli", "data")
    assert "harness/budget_axis.py" in closure  # data -> params -> budget_axis
    assert "harness/store.py" in closure  # data -> store (canonical_json)
    assert "harness/stats.py" in import_closure("cli", "calibrate")


@pytest.mark.parametrize("stage", list(_stages()))
def test_each_stage_depends_on_every_module_it_imports(stage):
    spec = _stages()[stage]
    assert spec["cmd"] == f"harness {stage}", "this test derives the entry module from `harness <stage>`"
    deps = [d if isinstance(d, str) else next(iter(d)) for d in spec.get("deps", [])]
    missing = sorted(p for p in import_closure("cli", STAGE_MODULE.get(stage, stage)) if not _covered(p, deps))
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
