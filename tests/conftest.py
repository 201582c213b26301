"""Shared fixtures: a real local OpenAI-protocol server and a scratch project directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fake_server import FakeModel, serve

REPO = Path(__file__).resolve().parents[1]


def apply_params_diff(params: dict, diff: str) -> dict:
    """Apply a params diff shown in the docs to `params`, in place (returned for convenience): context lines
    name the section, each `-  key: value` must be what `params` holds now (a diff that removes a stale
    value is a wrong diff), then `+  key: value` sets it (a value params.yaml sets, not null, needs its `-`
    line first); a key only removed is deleted."""
    section, removed, added = None, [], set()
    for line in diff.splitlines():
        if line.startswith(" ") and line.strip().endswith(":"):
            section = line.strip()[:-1]
        elif line.startswith(("-", "+")):
            ((key, value),) = yaml.safe_load(line[1:].strip()).items()
            if line.startswith("-"):
                assert section in params and params[section].get(key, "<absent>") == value, (
                    f"the diff removes {section}.{key}: {value!r}, but params.yaml has "
                    f"{params.get(section, {}).get(key, '<absent>')!r}")
                removed.append((section, key))
            else:
                assert params[section].get(key) is None or (section, key) in removed, (
                    f"the diff sets {section}.{key} without a `-` line for params.yaml's "
                    f"{params[section][key]!r}")
                params[section][key] = value
                added.add((section, key))
    for section, key in removed:
        if (section, key) not in added:
            del params[section][key]
    return params


DATA = REPO / "data"  # the committed offline copies of the named datasets (data/README.md)


@pytest.fixture
def fake_model():
    model = FakeModel()
    server, url = serve(model)
    model.url = url
    yield model
    model.released.set()  # a test that wedged the server lets its hung handlers go
    server.shutdown()
    server.server_close()


def arithmetic_problems(n: int = 6) -> list[dict]:
    return [{"id": f"p{i}", "problem": f"What is {i + 3} + {2 * i + 5}?", "answer": str(3 * i + 8)}
            for i in range(n)]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch project: cwd is tmp_path, with a local dataset; `write_params` writes params.yaml."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in arithmetic_problems()), encoding="utf-8")

    def write_params(base_url: str, **sections) -> Path:
        # the embedded base_url needs one of its models' names (embedded.MODELS): the default's
        name = "qwen2.5-coder-0.5b-instruct" if base_url == "embedded" else "fake"
        params = {
            "model": {"base_url": base_url, "name": name},
            "data": {"source": str(data)},
            "budgets": {"method": "forcing", "requested": [4, 16, 64]},
            "sampling": {"samples": 3, "vote_samples": 6, "concurrency": 4, "seed": 0},
        }
        for key, value in sections.items():
            params.setdefault(key, {}).update(value)
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(params), encoding="utf-8")
        return path

    return write_params
