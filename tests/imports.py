"""The harness package's import graph, read from the source with `ast` (shared by the layer and DVC tests).

A module is named by its dotted path under harness/ ("params", "stages.vote", "analysis.stats"). Every
import counts, lazy ones inside functions included: they run too, and a lazy import only delays a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "harness"


def module_names() -> dict[str, Path]:
    """Every module of the package (packages' __init__ files left out: they hold only a docstring)."""
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p
            for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__init__.py"}


def _resolve(current: str, node: ast.ImportFrom) -> list[str]:
    """The dotted names an `from … import …` statement may refer to, relative to the importing module."""
    if node.level:
        package = current.split(".")[:-1]
        base = package[: len(package) - (node.level - 1)]
    elif node.module and (node.module == "harness" or node.module.startswith("harness.")):
        base = []
        node = ast.ImportFrom(module=node.module.removeprefix("harness").lstrip(".") or None, names=node.names, level=0)
    else:
        return []
    stem = base + (node.module.split(".") if node.module else [])
    return [".".join(stem)] + [".".join([*stem, alias.name]) for alias in node.names]


def imports_of(name: str, modules: dict[str, Path] | None = None) -> set[str]:
    """The harness modules one module imports anywhere in its source."""
    modules = modules or module_names()
    found: set[str] = set()
    for node in ast.walk(ast.parse(modules[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            found.update(_resolve(name, node))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("harness.") for a in node.names if a.name.startswith("harness."))
    return (found & set(modules)) - {name}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, modules) for name in modules}


def import_closure(*entries: str) -> set[str]:
    """Every module the entries run, as repository paths (harness/stages/vote.py)."""
    graph = import_graph()
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module] - seen)
    return {"harness/" + m.replace(".", "/") + ".py" for m in seen}
