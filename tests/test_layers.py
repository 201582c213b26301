"""Stages that never talk to a model never load an HTTP library (`harness vote`, `harness plot`, `harness report`)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import REPO

HTTP_LIBRARIES = ("openai", "aiohttp", "httpx")

RUN_STAGE = """
import sys
from harness.cli import main
code = main([sys.argv[1]])
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[2:]))
print("exit", code, "loaded", " ".join(loaded))
"""


@pytest.mark.parametrize("stage", ["vote", "plot", "report"])
def test_a_stage_without_a_model_runs_without_importing_an_http_library(stage, tmp_path):
    """Run as the user runs it (the `harness` entry point, in a fresh interpreter) on the committed run."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "outputs", tmp_path / "outputs")
    shutil.copytree(REPO / "store", tmp_path / "store")  # the report reads every transcript from it
    done = subprocess.run([sys.executable, "-c", RUN_STAGE, stage, *HTTP_LIBRARIES], cwd=tmp_path, check=False,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "exit 0 loaded ", done.stdout + done.stderr


def _imports_of(path) -> set[str]:
    """The harness modules a module imports, wherever the import statement is (a lazy import inside a
    function is still an edge: it only delays the circle)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("harness."):
                found.add(node.module.split(".")[1])
            elif node.module == "harness":
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("harness."))
    return found


def test_the_package_has_no_import_circle():
    """Data flows one way: no module reaches back to one that imports it (embedded.py and llama_server.py
    share the machine's caches through machine.py, not through each other)."""
    modules = {p.stem: p for p in (REPO / "harness").glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports_of(path) & set(modules) - {name} for name, path in modules.items()}

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    return [*path, start]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    circles = [c for name in sorted(graph) if (c := cycle_from(name))]
    assert not circles, circles[0]
