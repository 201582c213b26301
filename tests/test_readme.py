"""The README's two commands are the contract with users; CI must run the very same test command."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> dict[str, str]:
    block = re.search(r"```bash\n(# the main job.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    assert block, "README lost its block with the main job and the test command"
    lines = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    assert len(lines) == 2, lines
    return {"main": lines[0], "tests": lines[1]}


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (REPO / ".ci" / "run").read_text()
    command = readme_commands()["tests"].replace("pip install ", "pip install --quiet ")
    assert command in ci, f"{command!r} not in .ci/run"


def test_the_readme_test_sessions_exist_and_are_nox_defaults():
    noxfile = (REPO / "noxfile.py").read_text()
    sessions = readme_commands()["tests"].split("nox -s ", 1)[1].split()
    for name in sessions:
        assert re.search(rf"^def {name.replace('-', '_')}\(", noxfile, re.MULTILINE), name
    assert f"nox.options.sessions = {sessions!r}".replace("'", '"') in noxfile
    assert readme_commands()["main"].endswith("nox -s reproduce")
