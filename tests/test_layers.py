"""The floors of harness/ hold: each package imports only the floors below it, and nothing runs in a circle.

Floors, top to bottom: the command and the commands that are not stages (cli, estimate, preflight, summary,
compare); stages/; report/; requests/; servers/; analysis/ (pure); the ground (params, files, data,
budget_axis, redact). And stages that never talk to a model never load an HTTP library.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys

import pytest
from conftest import REPO
from imports import PACKAGE, import_graph

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



GROUND = {"params", "files", "data", "budget_axis", "redact"}
COMMANDS = {"cli", "estimate", "preflight", "summary", "compare", "llama_server", "share"}
PACKAGES = ("stages", "report", "interop", "requests", "servers", "analysis")
# The only imports from the ground up: params checks a name in params.yaml against the catalogue that defines
# it (the embedded models, the servers' thinking presets), lazily inside its validators.
GROUND_LOOKUPS = {("params", "servers.embedded"), ("params", "requests.thinking")}


def floor(module: str) -> str:
    if module in GROUND:
        return "ground"
    if module in COMMANDS:
        return "commands"
    package = module.split(".")[0]
    assert package in PACKAGES, f"harness/{module}.py is on no floor: add it to a package, or to GROUND/COMMANDS"
    return package


MAY_IMPORT = {
    "analysis": {"analysis", "ground"},
    "servers": {"servers"},
    "requests": {"requests", "analysis", "servers", "ground"},
    "report": {"report", "requests", "analysis", "ground"},
    # other tools' logs in and out: files and the store, never a stage
    "interop": {"interop", "requests", "analysis", "ground"},
    "stages": {"stages", "report", "requests", "servers", "analysis", "ground"},
    "ground": {"ground"},
    "commands": {"commands", "stages", "report", "interop", "requests", "servers", "analysis", "ground"},
}


def wrong_way_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} ({floor(m)}) imports {i} ({floor(i)})" for m, deps in graph.items() for i in deps
                  if floor(i) not in MAY_IMPORT[floor(m)] and (m, i) not in GROUND_LOOKUPS)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
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

    return [c for name in sorted(graph) if (c := cycle_from(name))]


def test_every_import_points_down_a_floor():
    """analysis/ imports no request, server or stage; requests/ no stage; report/ no stage; a stage no command."""
    assert not wrong_way_imports(import_graph())


@pytest.mark.parametrize("module, imported", [
    ("analysis.stats", "requests.store"),
    ("analysis.grade", "servers.embedded"),
    ("analysis.points", "stages.vote"),
    ("requests.chain", "stages.sample"),
    ("stages.vote", "summary"),
])
def test_the_rule_catches_an_import_running_back_up(module, imported):
    graph = import_graph()
    graph[module] = graph[module] | {imported}
    assert wrong_way_imports(graph) == [f"{module} ({floor(module)}) imports {imported} ({floor(imported)})"]


def test_the_package_has_no_import_circle():
    """Data flows one way: no module reaches back to one that imports it."""
    assert not circles(import_graph())


def test_a_circle_is_found():
    graph = import_graph()
    graph["budget_axis"] = graph["budget_axis"] | {"params"}  # params imports budget_axis
    assert ["budget_axis", "params", "budget_axis"] in circles(graph)


def test_every_module_is_on_a_floor_and_every_package_says_what_it_may_import():
    for module in import_graph():
        floor(module)
    for package in PACKAGES:
        doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"harness/{package}/__init__.py: say what lives there and what it may import"


def test_analysis_does_no_io():
    """Pure: from files it takes number formatting and path names, never a reader or a writer."""
    for module, path in ((m, PACKAGE / (m.replace(".", "/") + ".py")) for m in import_graph() if floor(m) == "analysis"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "files":
                names = {a.name for a in node.names}
                assert names <= {"json_number", "canonical_json"} | {n for n in names if n.isupper()}, (module, names)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", f"harness/{module}.py opens a file"


MAX_FUNCTION_LINES = 60


def test_no_function_is_longer_than_a_screen():
    """A function a reader can hold at once: at most 60 lines, its docstring included."""
    long = []
    for module, path in ((m, PACKAGE / (m.replace(".", "/") + ".py")) for m in import_graph()):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            lines = (getattr(node, "end_lineno", 0) or 0) - getattr(node, "lineno", 0) + 1
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and lines > MAX_FUNCTION_LINES:
                long.append(f"harness/{module.replace('.', '/')}.py {node.name}: {lines} lines")
    assert not long
