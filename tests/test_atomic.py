"""Killing a stage mid-write leaves its previous outputs intact (and the next run cleans up after it).

Each stage runs as a real `python -m harness.cli <stage>` process. The test watches the outputs
directory and sends SIGKILL the moment one of the stage's temp files appears, i.e. while the stage is
writing. A temp file still on disk after the kill proves the kill landed mid-write; then every output
must hold exactly its previous bytes, or (for an output already renamed into place) exactly the bytes
of a complete run: never a mix, never a truncated file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from harness.cli import main

STAGE_OUTPUTS = {
    "fetch": ["problems.jsonl", "dataset.json"],
    "calibrate": ["calibration.csv", "calibration.json"],
    "sample": ["samples.csv"],
    "vote": ["curve.csv", "metrics.json"],
    "plot": ["accuracy_vs_tokens.png", "requested_vs_actual.png", "regions.json"],
    "report": ["report.html"],
}
ATTEMPTS = 12  # kills per stage until one lands while a temp file exists


def _temps(outputs: Path, names: list[str]) -> list[Path]:
    return [p for name in names for p in outputs.glob(f".{name}.*.tmp")]


def _kill_while_writing(stage: str, cwd: Path, names: list[str]) -> tuple[bool, int | None]:
    """Start the stage, SIGKILL it as soon as a temp file of its outputs exists; True if one did."""
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(cwd), "PYTHONPATH": str(REPO),
           "HARNESS_NO_REQUESTS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", stage], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    outputs = cwd / "outputs"
    try:
        while proc.poll() is None:
            if _temps(outputs, names):
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.0002)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    return bool(_temps(outputs, names)), proc.returncode


@pytest.mark.parametrize("stage", list(STAGE_OUTPUTS))
def test_killing_a_stage_mid_write_leaves_the_previous_output_intact(stage, project, fake_model, tmp_path):
    project(fake_model.url, sampling={"samples": 2, "vote_samples": 4})
    assert main(["run"]) == 0  # a warm store, and the bytes of a complete run of every stage
    outputs = tmp_path / "outputs"
    names = STAGE_OUTPUTS[stage]
    complete = {name: (outputs / name).read_bytes() for name in names}

    caught = 0
    for attempt in range(ATTEMPTS):
        previous = {name: f"previous {name}, attempt {attempt}\n".encode() for name in names}
        for name, data in previous.items():
            (outputs / name).write_bytes(data)
        mid_write, code = _kill_while_writing(stage, tmp_path, names)
        for name in names:
            now = (outputs / name).read_bytes()
            assert now in (previous[name], complete[name]), f"{name} is neither old nor new after a kill"
        if mid_write:
            assert code == -signal.SIGKILL
            caught += 1
            # The output being written when the kill landed still holds its previous bytes.
            for tmp in _temps(outputs, names):
                name = next(n for n in names if tmp.name.startswith(f".{n}."))
                assert (outputs / name).read_bytes() == previous[name], name
            break
    assert caught, f"no kill landed mid-write of {stage} in {ATTEMPTS} attempts"

    # The next run finishes the job: complete outputs, and no temp file left behind by the dead writer.
    assert main([stage]) == 0
    assert {name: (outputs / name).read_bytes() for name in names} == complete
    assert _temps(outputs, names) == []


def test_a_live_writers_temp_file_is_left_alone_and_a_dead_writers_is_removed(tmp_path):
    """Two runs in one checkout may write the same output at the same moment: one must never delete the
    other's temp file (it did, and the other's rename failed); a killed writer's temp still goes."""
    import subprocess
    import sys

    from harness.files import write_bytes

    target = tmp_path / "samples.csv"
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".samples.csv.{writer.pid}.abc123.tmp"
        live.write_text("half written by another run")
        write_bytes(target, b"mine\n")
        assert live.exists() and target.read_bytes() == b"mine\n"
    finally:
        writer.kill()
        writer.wait()
    write_bytes(target, b"mine again\n")
    assert not live.exists()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_and_the_store_get_the_users_umask(umask, mode, project, fake_model):
    """A colleague on a shared filesystem (or a web server) reads report.html only if the harness writes
    its files like any other tool: 0666 less the umask. mkstemp made every output 0600 whatever the umask."""
    project(fake_model.url, sampling={"samples": 1, "vote_samples": 1})
    previous = os.umask(umask)
    try:
        assert main(["fetch"]) == 0
        assert main(["calibrate"]) == 0
    finally:
        os.umask(previous)
    written = [Path("outputs") / name for name in ("problems.jsonl", "dataset.json", "calibration.csv")]
    written += sorted(Path("store").rglob("*.jsonl"))
    assert len(written) > 3, written  # the store wrote at least one shard
    assert {str(p): oct(p.stat().st_mode & 0o777) for p in written} == {str(p): oct(mode) for p in written}
