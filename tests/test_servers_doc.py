"""docs/servers.md: each server family's params diff, applied to the committed params.yaml, prints exactly
the `harness estimate` shown, and its first request carries that server's documented field."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import REPO, apply_params_diff

from harness.cli import main
from harness.params import Params
from harness.requests.chain import first_request

DOC = REPO / "docs" / "servers.md"
FAMILIES = ("vLLM", "SGLang", "llama.cpp", "Ollama", "Anthropic", "Gemini", "OpenAI")
# The field each family's example must send (top level of the JSON body, as the SDK merges extra_body).
SENT = {
    "vLLM": lambda body: body["extra_body"] == {"thinking_token_budget": 512},
    "SGLang": lambda body: body["endpoint"] == "completions" and body["stop"] == ["</think>"]
    and body["prompt"].endswith("<\uff5cAssistant\uff5c><think>\n"),
    "llama.cpp": lambda body: body["endpoint"] == "completions" and body["prompt"].endswith(
        "<|im_start|>assistant\n<think>\n"),
    "Ollama": lambda body: body["max_tokens"] == 1024 and "max_completion_tokens" not in body,
    "Anthropic": lambda body: body["extra_body"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    and body["max_tokens"] == 20000 and "temperature" not in body,
    "Gemini": lambda body: body["extra_body"] == {
        "extra_body": {"google": {"thinking_config": {"thinking_budget": 512}}}},
    "OpenAI": lambda body: body["reasoning_effort"] == "low" and "temperature" not in body,
}


def sections() -> dict[str, tuple[str, str]]:
    """Heading's first word -> (params diff, estimate printout)."""
    found = {}
    for part in DOC.read_text(encoding="utf-8").split("\n## ")[1:]:
        name = part.split(":", 1)[0].split()[0]
        diff = re.search(r"```diff\n(.*?)```", part, re.DOTALL)
        shown = re.search(r"```console\n\$ harness estimate\n(.*?)```", part, re.DOTALL)
        assert diff and shown, name
        found[name] = (diff.group(1), shown.group(1))
    return found


def apply(diff: str) -> dict:
    """The committed params.yaml with the diff's `+` lines applied."""
    return apply_params_diff(yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8")), diff)


def test_every_server_family_has_a_worked_example():
    assert tuple(sections()) == FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_the_worked_example_prints_what_the_doc_shows_and_sends_the_documented_field(
        family, tmp_path, monkeypatch, capsys):
    diff, shown = sections()[family]
    params = apply(diff)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(REPO / "data")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.setenv(name, "not-a-key")
    assert main(["estimate"]) == 0
    assert capsys.readouterr().out == shown
    validated = Params.model_validate(params)
    body = first_request(validated, "What is 1 + 1?", "p0", validated.budgets.requested[0], 0)
    assert SENT[family](body), body


def test_the_readme_points_vllm_at_thinking_token_budget_and_no_doc_sends_the_ignored_field():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "thinking_token_budget" in readme and "docs/servers.md" in readme
    for doc in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        assert 'thinking_budget: "{budget}"' not in doc.read_text(encoding="utf-8"), doc.name
