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
