"""The README's two commands are the contract with users; CI must run the very same test command."""

from __future__ import annotations

import re

from conftest import REPO, apply_params_diff


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


def _worked_example() -> tuple[list[str], list[str]]:
    """The hosted worked example: the README's params diff, then docs/methods.md's effort diff on top of it,
    each with the `harness estimate` output it shows."""
    diffs, outputs = [], []
    for doc, heading in (("README.md", "### Worked example"), ("docs/methods.md", "## Worked example")):
        section = (REPO / doc).read_text().split(heading, 1)[1].split("\n#", 1)[0]
        diffs += re.findall(r"```diff\n(.*?)```", section, re.DOTALL)
        outputs += re.findall(r"```console\n\$ harness estimate\n(.*?)```", section, re.DOTALL)
    assert len(diffs) == len(outputs) >= 2, (len(diffs), len(outputs))
    return diffs, outputs


def test_the_hosted_worked_example_prints_what_the_readme_shows(tmp_path, monkeypatch, capsys):
    """Apply the README's diffs to the committed params.yaml and run the real `harness estimate` (offline)."""
    import yaml

    from harness.cli import main

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(REPO / "data")  # the README's `data.path`, relative as a user has it
    for diff, shown in zip(*_worked_example()):
        apply_params_diff(params, diff)
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        assert main(["estimate"]) == 0
        assert capsys.readouterr().out == shown
    assert params["data"]["path"] == "data/aime2024.jsonl"
    assert not (tmp_path / "store").exists() and not (tmp_path / "outputs").exists()  # a dry run


def _documented_statuses(doc: str, opening: str) -> list[str]:
    """The backticked names in the sentence of `doc` that starts with `opening` (up to its full stop)."""
    text = " ".join((REPO / doc).read_text().split())
    sentence = text.split(opening, 1)[1].split(". ", 1)[0]
    sentence = re.sub(r"\([^)]*\)", "", sentence)  # explanations in brackets name other things
    return re.findall(r"`([a-z-]+)`", sentence)


def test_documented_sample_statuses_are_the_ones_the_code_writes():
    from harness.stages.sample import STATUSES

    assert _documented_statuses("README.md", "`status` is one of") == list(STATUSES)
    assert _documented_statuses("docs/methods.md", "Every sample ends with a `status`:") == list(STATUSES)


def test_every_module_has_its_one_sentence_in_the_development_guide():
    """docs/development.md's table of modules is the package: every module has its one sentence, and no
    sentence describes a module that is gone; the README names every package once."""
    section = (REPO / "docs/development.md").read_text().split("### Every module in one sentence", 1)[1].split("\n### ", 1)[0]
    listed = re.findall(r"^\| `([a-z_/]+\.py)` \| (.+) \|$", section, re.MULTILINE)
    package = REPO / "harness"
    modules = sorted(str(p.relative_to(package)) for p in package.rglob("*.py") if p.name != "__init__.py")
    assert sorted(name for name, _ in listed) == modules
    assert len({name for name, _ in listed}) == len(listed)
    assert all(sentence.endswith(".") and sentence.count(". ") == 0 for _, sentence in listed), "one sentence each"
    readme = (REPO / "README.md").read_text().split("## Where things are", 1)[1].split("\n## ", 1)[0]
    packages = sorted(p.parent.name for p in package.glob("*/__init__.py"))
    assert sorted(re.findall(r"^\| `harness/([a-z_]+)/` \|", readme, re.MULTILINE)) == packages
