"""noxfile.py's own logic: when the model's compile starts early, and what a cached wheel is checked against."""

from __future__ import annotations

import hashlib
import sys

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def noxfile():
    sys.path.insert(0, str(REPO))
    try:
        import noxfile
    finally:
        sys.path.remove(str(REPO))
    return noxfile


README_COMMAND = ["-s", "lint", "typecheck", "tests", "replay", "browser"]


@pytest.mark.parametrize(("argv", "early"), [
    (README_COMMAND, True),
    ([], True),  # the default sessions include tests
    (["--session=tests"], True),
    (["-R", "-s", "typecheck", "tests"], True),
    (["-s", "lint", "typecheck"], False),
    (["-s", "reproduce"], False),
    (["-s", "tests", "--", "-m", "not embedded"], False),  # the fast lane never needs the model
    (["-l"], False),
    (["-k", "test"], False),
])
def test_the_compile_starts_with_nox_only_when_the_tests_session_will_need_it(noxfile, argv, early):
    assert noxfile.asked_for("tests", argv) is early


def test_only_nox_itself_starts_the_compile_never_a_test_importing_the_file(noxfile):
    assert noxfile.run_by_nox("/usr/local/bin/nox")
    assert noxfile.run_by_nox("/venv/lib/python3.11/site-packages/nox/__main__.py")
    assert not noxfile.run_by_nox(sys.argv[0])  # pytest, here
    assert noxfile.EARLY_WHEEL is None


def test_a_cached_wheel_is_rebuilt_when_the_text_only_include_changes(noxfile):
    text = noxfile.TEXT_ONLY.read_text()
    assert "set(LLAMA_BUILD_COMMON OFF CACHE BOOL" in text and "FORCE)" in text
    assert hashlib.sha256(text.encode()).hexdigest()[:16] in noxfile.BUILD_RECORD
    assert str(REPO) not in noxfile.BUILD_RECORD  # the same wheel serves every clone on the machine
    assert f'INCLUDE="{noxfile.TEXT_ONLY}"' in noxfile.cmake_args()
