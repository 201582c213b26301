"""params.yaml validation: every mistake is one line naming the key, the value and what is allowed."""

import pytest
import yaml

from harness.params import ParamsError, load_params


def _write(tmp_path, doc) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    return str(path)


def test_defaults_are_valid(tmp_path):
    params = load_params(_write(tmp_path, {}))
    assert params.model.base_url == "embedded"
    assert params.vote_budget == params.budgets.requested[-1]


def test_repository_params_yaml_is_valid():
    from conftest import REPO

    load_params(REPO / "params.yaml")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"budgets": {"requested": [16, -32]}}, "budgets.requested[1] = -32: budgets must be positive integers"),
        ({"budgets": {"requested": [64, 32]}}, "budgets.requested[1] = 32: budgets must be strictly increasing"),
        ({"budgets": {"requested": []}}, "budgets.requested = []: must list at least one token budget"),
        ({"budgets": {"method": "telepathy"}}, "budgets.method = 'telepathy': allowed values: 'prompt', "),
        ({"budgets": {"requestd": [1]}}, "budgets.requestd: unknown key (did you mean 'requested'?)"),
        ({"sampling": {"samples": 0}}, "sampling.samples = 0: Input should be greater than 0"),
        ({"sampling": {"samples": "many"}}, "sampling.samples = 'many'"),
        ({"sampling": {"samples": 4, "vote_samples": 2}}, "sampling.vote_samples = 2: must be >= sampling.samples"),
        ({"modle": {}}, "modle: unknown key (did you mean 'model'?)"),
        ({"model": {"base_url": "ftp://x"}}, "model.base_url = 'ftp://x': must be 'embedded' or http(s)://"),
        ({"model": {"api_key_env": "sk-abc123-def"}}, "must be the NAME of an environment variable"),
        ({"data": {"source": "missing/problems.jsonl"}}, "data.source = 'missing/problems.jsonl': file not found"),
        ({"budgets": {"prompt_template": "no placeholder"}}, "must contain the placeholder {problem}"),
        ("model: [unclosed", "not valid YAML"),
    ],
)
def test_bad_params_give_one_line_naming_the_problem(tmp_path, doc, message):
    with pytest.raises(ParamsError) as info:
        load_params(_write(tmp_path, doc))
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_api_key_value_is_never_echoed(tmp_path):
    with pytest.raises(ParamsError) as info:
        load_params(_write(tmp_path, {"model": {"api_key_env": "sk-secret-value-123"}}))
    assert "sk-secret-value-123" not in str(info.value)  # it may well be a pasted key
    assert "never the key itself" in str(info.value)


def test_every_allowed_chat_template_is_one_the_request_builder_can_render():
    """`model.chat_template` is read: each name params.yaml accepts renders a prompt (and only those)."""
    from typing import get_args

    from harness.params import ModelParams
    from harness.requests.chain import CHAT_TEMPLATES

    assert set(get_args(ModelParams.model_fields["chat_template"].annotation)) == set(CHAT_TEMPLATES)


def test_chatml_renders_the_prompt_the_committed_store_was_recorded_with(tmp_path):
    """The committed store is keyed by this exact text: a change here would re-pay every forced request."""
    from harness.requests.chain import first_request

    params = load_params(_write(tmp_path, {"model": {"chat_template": "chatml"}}))
    request = first_request(params, "What is 2 + {2}?", "p0", 16, 0)
    assert request["prompt"] == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nSolve the following problem. Reason step by step, then give the final answer in "
        "\\boxed{}.\n\nWhat is 2 + {2}?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_the_retired_saturation_tolerance_is_accepted_with_a_warning_that_it_changes_nothing(tmp_path):
    """Existing params files keep working after the fitted saturation point replaced the tolerance."""
    with pytest.warns(UserWarning, match="vote.saturation_tolerance is no longer used"):
        params = load_params(_write(tmp_path, {"vote": {"saturation_tolerance": 0.01}}))
    assert params.vote.min_samples == 1
