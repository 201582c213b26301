"""A corpus of broken inputs (params, datasets, response store), each run through the real CLI.

Every case must end the same way: exit code 2, one line on stderr naming what is wrong (the specific
message is asserted), no traceback, zero requests to the model (the local test server counts them), and
not one byte of the project directory changed: no output, no store shard, nothing created or touched.
`harness run` is used throughout because it is the most exposed command: it would otherwise write the
fetch outputs before a later stage noticed the problem.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, arithmetic_problems

from harness.analysis.grade import extract_answer, is_equivalent, normalize_answer
from harness.cli import main
from harness.data import DataError
from harness.files import canonical_json
from harness.requests.store import SCHEMA_VERSION, request_key

KEY_ENV = "HARNESS_BROKEN_INPUT_KEY"


@dataclass(frozen=True)
class Case:
    """One broken input: `setup(root, url)` breaks the scratch project; `message` must be in the error."""

    name: str
    setup: Callable[[Path, str], None]
    message: str


def _params(root: Path, url: str, **sections: dict) -> None:
    """The known-good params of the `project` fixture, with `sections` merged in (None deletes a key)."""
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params["model"]["base_url"] = url
    for section, values in sections.items():
        target = params.setdefault(section, {})
        for key, value in values.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")


def params_case(name: str, message: str, **sections: dict) -> Case:
    return Case(name, lambda root, url: _params(root, url, **sections), message)


def raw_params_case(name: str, text: str, message: str) -> Case:
    return Case(name, lambda root, url: (root / "params.yaml").write_text(text, encoding="utf-8"), message)


def _dataset(filename: str, body: bytes, **data: str) -> Callable[[Path, str], None]:
    def setup(root: Path, url: str) -> None:
        (root / filename).write_bytes(body)
        _params(root, url, data={"source": str(root / filename), **data})

    return setup


def _lines(*rows: object) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode("utf-8")


GOOD = arithmetic_problems(3)


def dataset_case(name: str, body: bytes, message: str, filename: str = "data.jsonl", **data: str) -> Case:
    return Case(name, _dataset(filename, body, **data), message)


def _record(request: dict, response: object, **override: object) -> dict:
    record = {"v": SCHEMA_VERSION, "key": request_key(request), "request": request, "response": response}
    record.update(override)
    return record


VALID = _record({"endpoint": "completions", "model": "fake", "prompt": "What is 1 + 1?", "seed": 1},
                {"text": "2}", "finish_reason": "stop", "completion_tokens": 2})


def _store(*lines: bytes | dict, shard: str = "sample") -> Callable[[Path, str], None]:
    def setup(root: Path, url: str) -> None:
        (root / "store").mkdir(exist_ok=True)
        body = b"".join(
            line if isinstance(line, bytes) else (canonical_json(line) + "\n").encode() for line in lines
        )
        (root / "store" / f"{shard}.jsonl").write_bytes(body)
        _params(root, url)

    return setup


def store_case(name: str, message: str, *lines: bytes | dict, shard: str = "sample") -> Case:
    return Case(name, _store(*lines, shard=shard), message)


def _closed_port_url(root: Path, url: str) -> None:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _params(root, f"http://127.0.0.1:{port}/v1")


def _hosted(api_key_env: str | None) -> Callable[[Path, str], None]:
    def setup(root: Path, url: str) -> None:
        # Not a loopback host, so a key is required; the check fails before anything is resolved or sent.
        _params(root, "https://api.example.invalid/v1",
                model={"api_key_env": api_key_env} if api_key_env else {"api_key_env": None})

    return setup


def _other_params_store(root: Path, url: str) -> None:
    """A valid store written for another model: it must be ignored, never reused for these requests."""
    _store(_record({**VALID["request"], "model": "another-model"}, VALID["response"]))(root, url)


CASES = [
    # --- params.yaml: keys, types, values -----------------------------------------------------------
    params_case("unknown top-level key", "modle: unknown key (did you mean 'model'?)", modle={"name": "x"}),
    params_case("unknown budgets key", "budgets.requestd: unknown key (did you mean 'requested'?)",
                budgets={"requestd": [16]}),
    params_case("unknown sampling key", "sampling.sampels: unknown key (did you mean 'samples'?)",
                sampling={"sampels": 3}),
    params_case("samples not a number", "sampling.samples = 'many': Input should be a valid integer",
                sampling={"samples": "many"}),
    params_case("samples a YAML boolean", "sampling.samples = True: Input should be a valid integer",
                sampling={"samples": True}),
    params_case("samples a quoted number", "sampling.samples = '4': Input should be a valid integer",
                sampling={"samples": "4"}),
    params_case("samples fractional", "sampling.samples = 2.5: Input should be a valid integer",
                sampling={"samples": 2.5}),
    params_case("temperature not a number", "sampling.temperature = 'hot': Input should be a valid number",
                sampling={"temperature": "hot"}),
    params_case("temperature out of range", "sampling.temperature = 3: Input should be less than or equal to 2",
                sampling={"temperature": 3}),
    params_case("budgets not a list", "budgets.requested = 16: Input should be a valid list",
                budgets={"requested": 16}),
    params_case("budget not an integer", "budgets.requested[1] = 'x': budgets must be positive integers",
                budgets={"requested": [4, "x"]}),
    params_case("fractional budget", "budgets.requested[1] = 16.5: Input should be a valid integer",
                budgets={"requested": [4, 16.5]}),
    params_case("effort level without method effort",
                "budgets.requested[0] = 'low': budgets must be positive integers (token counts) (an effort "
                "level: set budgets.method: effort)", budgets={"requested": ["low", "high"]}),
    params_case("misspelt effort level", "budgets.requested[1] = 'meduim': method effort takes reasoning_effort "
                "levels (did you mean 'medium'?)", budgets={"method": "effort", "requested": ["low", "meduim"]}),
    params_case("token budget with method effort", "budgets.requested[0] = 1024: method effort takes "
                "reasoning_effort levels", budgets={"method": "effort", "requested": [1024]}),
    params_case("effort levels out of order", "budgets.requested[1] = 'low': effort levels must be listed "
                "least to most", budgets={"method": "effort", "requested": ["high", "low"]}),
    params_case("empty budgets", "budgets.requested = []: must list at least one token budget",
                budgets={"requested": []}),
    params_case("decreasing budgets", "budgets.requested[1] = 32: budgets must be strictly increasing",
                budgets={"requested": [64, 32]}),
    params_case("repeated budget", "budgets.requested[1] = 16: budgets must be strictly increasing",
                budgets={"requested": [16, 16]}),
    params_case("zero budget", "budgets.requested[0] = 0: budgets must be positive integers",
                budgets={"requested": [0, 16]}),
    params_case("negative budget", "budgets.requested[1] = -4: budgets must be positive integers",
                budgets={"requested": [16, -4]}),
    params_case("zero samples", "sampling.samples = 0: Input should be greater than 0", sampling={"samples": 0}),
    params_case("negative samples", "sampling.samples = -3: Input should be greater than 0",
                sampling={"samples": -3}),
    params_case("zero concurrency", "sampling.concurrency = 0: Input should be greater than 0",
                sampling={"concurrency": 0}),
    params_case("vote pool smaller than the pool", "sampling.vote_samples = 1: must be >= sampling.samples (2)",
                sampling={"vote_samples": 1}),
    params_case("min_samples larger than any point", "vote.min_samples = 100: must be <= data.limit x sampling",
                data={"limit": 4}, vote={"min_samples": 100}),
    params_case("calibrate more problems than fetched", "calibrate.problems = 9: must be <= data.limit (4)",
                data={"limit": 4}, calibrate={"problems": 9}),
    params_case("zero limit", "data.limit = 0: Input should be greater than 0", data={"limit": 0}),
    params_case("unknown method", "budgets.method = 'telepathy': allowed values: 'prompt'",
                budgets={"method": "telepathy"}),
    params_case("unknown chat template", "model.chat_template = 'llama2': allowed values: 'chatml'",
                model={"chat_template": "llama2"}),
    params_case("unknown answer type", "data.answer_type = 'float': allowed values: 'auto', 'integer' or 'any'",
                data={"answer_type": "float"}),
    params_case("template without {problem}", "budgets.prompt_template = 'Solve it': must contain the placeholder",
                budgets={"prompt_template": "Solve it"}),
    params_case("base_url not http", "model.base_url = 'ftp://models': must be 'embedded' or http(s)://",
                model={"base_url": "ftp://models"}),
    params_case("key pasted instead of its variable name", "model.api_key_env = (value hidden: it may be a key)",
                model={"api_key_env": "sk-proj-abc123"}),
    params_case("misspelt dataset scheme",
                "data.source = 'reasoninggym:chain_sum': unknown source prefix 'reasoninggym:' "
                "(did you mean 'reasoning_gym:'?)", data={"source": "reasoninggym:chain_sum"}),
    params_case("missing dataset file", "data.source = 'nowhere/problems.jsonl': file not found",
                data={"source": "nowhere/problems.jsonl"}),
    params_case("unknown reasoning-gym task",
                "data.source = 'reasoning_gym:chain_summ': unknown reasoning-gym task "
                "(did you mean 'reasoning_gym:chain_sum'?)", data={"source": "reasoning_gym:chain_summ"}),
    raw_params_case("not YAML", "model: [unclosed\n", "params.yaml: not valid YAML (line 2)"),
    raw_params_case("not a mapping", "- model\n- data\n", "params.yaml: must be a mapping of sections"),
    raw_params_case("section not a mapping", "model: 5\n", "model = 5: must be a mapping of keys"),
    # --- the endpoint: checked once, before anything is sent ------------------------------------------
    Case("unreachable base_url", _closed_port_url, "unreachable"),
    Case("key variable not set", _hosted(KEY_ENV),
         f"model.api_key_env = '{KEY_ENV}': that environment variable is not set; export {KEY_ENV}=..."),
    Case("hosted endpoint without a key variable", _hosted(None),
         "model.api_key_env is not set, but model.base_url = 'https://api.example.invalid/v1' is not local; set "
         "model.api_key_env to the NAME of the environment variable holding the key, or to `none` if the server "
         "needs no key"),
    # --- dataset rows: file and line --------------------------------------------------------------
    dataset_case("line not JSON", _lines(GOOD[0], GOOD[1], '{"id": "x", "problem": "1+1"'),
                 "data.jsonl:3: not valid JSON"),
    dataset_case("truncated last line", _lines(GOOD[0])[:-1] + b'\n{"id": "p9", "prob',
                 "data.jsonl:2: not valid JSON"),
    dataset_case("line is an array", _lines(GOOD[0], [1, 2, 3]),
                 "data.jsonl:2: each line must be a JSON object with id, problem, answer"),
    dataset_case("missing problem", _lines(GOOD[0], {"id": "q", "answer": "3"}),
                 "data.jsonl:2: missing or empty 'problem'"),
    dataset_case("empty answer", _lines({**GOOD[0], "answer": "  "}), "data.jsonl:1: missing or empty 'answer'"),
    dataset_case("missing answer", _lines(GOOD[0], GOOD[1], {"id": "q", "problem": "What is 1 + 1?"}),
                 "data.jsonl:3: missing or empty 'answer'"),
    dataset_case("missing id", _lines({"problem": "What is 1 + 1?", "answer": "2"}),
                 "data.jsonl:1: missing or empty 'id'"),
    dataset_case("answer is a list", _lines({**GOOD[0], "answer": [1, 2]}),
                 "data.jsonl:1: 'answer' = [1, 2]: must be a string or a number, not list"),
    dataset_case("duplicate id", _lines(GOOD[0], GOOD[1], GOOD[0]),
                 "data.jsonl:3: duplicate id 'p0' (first at"),
    dataset_case("not UTF-8", _lines(GOOD[0], GOOD[1]) + b'{"id": "q", "problem": "caf\xe9", "answer": "1"}\n',
                 "data.jsonl:3: not UTF-8 (byte 0xe9)"),
    dataset_case("empty file", b"\n\n", "data.jsonl: no problems found"),
    dataset_case("non-integer AIME answer", _lines(GOOD[0], {**GOOD[1], "answer": "\\frac{1}{2}"}),
                 "aime_2024.jsonl:2: answer = '\\\\frac{1}{2}': AIME answers are integers",
                 filename="aime_2024.jsonl"),
    dataset_case("non-integer answer, answer_type integer", _lines({**GOOD[0], "answer": "3.5"}),
                 "data.jsonl:1: answer = '3.5': AIME answers are integers", answer_type="integer"),
    # --- the response store ------------------------------------------------------------------------
    store_case("garbage store line", "store/sample.jsonl:2: not a JSON record; the store is damaged",
               VALID, b"this is not json\n"),
    store_case("truncated record mid-file", "store/sample.jsonl:1: not a JSON record",
               canonical_json(VALID)[:40].encode() + b"\n", VALID),
    store_case("non-UTF-8 store line", "store/calibrate.jsonl:1: not a JSON record",
               b'{"v": 1, "key": "\xff\xfe"}\n', shard="calibrate"),
    store_case("unknown schema version", "store/sample.jsonl:1: unknown store schema v=2 (expected v=1)",
               _record(VALID["request"], VALID["response"], v=2)),
    store_case("record without version", "unknown store schema v=None",
               {k: v for k, v in VALID.items() if k != "v"}),
    store_case("record is a list", "store/sample.jsonl:1: unknown store schema", b"[1, 2, 3]\n"),
    store_case("edited request (key no longer matches)", "store/sample.jsonl:2: the key does not match its request",
               VALID, {**VALID, "request": {**VALID["request"], "seed": 2}}),
    store_case("response without text", "store/sample.jsonl:1: the record has no valid request/response",
               _record(VALID["request"], {"finish_reason": "stop"})),
    store_case("response not an object", "store/calibrate.jsonl:1: the record has no valid request/response",
               _record(VALID["request"], "2"), shard="calibrate"),
    Case("store written for other params, replay only", _other_params_store,
         "run: 18 of 18 samples are missing from store/ and HARNESS_NO_REQUESTS is set"),
]


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and directory under root, with content hash and mtime: 'untouched' means equal."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
                                   p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def test_the_corpus_is_large_and_every_message_is_distinct():
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)
    assert len({c.message for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_broken_input_exits_2_with_one_line_no_request_and_nothing_touched(
    case, project, fake_model, capsys, monkeypatch, tmp_path
):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv("HARNESS_NO_REQUESTS", "1") if "replay" in case.name else None
    project(fake_model.url, sampling={"samples": 2, "vote_samples": 2}, budgets={"requested": [4, 16, 64]})
    # The fixture's params with 3 problems: small plans, and a dataset the cases can break.
    (tmp_path / "problems.jsonl").write_bytes(_lines(*GOOD))
    case.setup(tmp_path, fake_model.url)
    before = _snapshot(tmp_path)

    code = main(["run"])

    out, err = capsys.readouterr()
    assert code == 2, err
    assert case.message in err, err
    assert err.startswith("harness: ") and err.count("\n") == 1, err  # exactly one line
    assert "Traceback" not in err and out == ""
    assert fake_model.requests == [], "a broken input must cost nothing"
    assert _snapshot(tmp_path) == before, "a broken input must not create or touch any file"


@pytest.mark.parametrize("case", [c for c in CASES if c.name in {
    "unknown budgets key", "duplicate id", "garbage store line", "non-UTF-8 store line"}], ids=lambda c: c.name)
def test_a_fresh_process_says_the_same_with_exit_2_and_no_traceback(case, project, fake_model, tmp_path):
    """No traceback from the real entry point either (imports, warnings and all), and exit code 2."""
    project(fake_model.url, sampling={"samples": 2, "vote_samples": 2})
    (tmp_path / "problems.jsonl").write_bytes(_lines(*GOOD))
    case.setup(tmp_path, fake_model.url)
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run"], capture_output=True, text=True,
                            check=False, cwd=tmp_path, env={"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path),
                                               "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 2, result.stderr
    assert case.message in result.stderr
    assert "Traceback" not in result.stderr
    assert fake_model.requests == []


def test_previous_outputs_survive_every_kind_of_broken_rerun(project, fake_model, capsys, tmp_path):
    """After a good run, a broken dataset, store or endpoint leaves every output exactly as it was."""
    project(fake_model.url, sampling={"samples": 2, "vote_samples": 2})
    assert main(["run"]) == 0
    sent = len(fake_model.requests)
    outputs = _snapshot(tmp_path / "outputs")

    def new_budget_unreachable(root: Path, url: str) -> None:
        _closed_port_url(root, url)  # a warm store needs no server: a new budget does
        _params(root, yaml.safe_load((root / "params.yaml").read_text())["model"]["base_url"],
                budgets={"requested": [4, 16, 64, 128]})

    broken = [c for c in CASES if c.name in {"duplicate id", "garbage store line", "unknown schema version",
                                              "decreasing budgets"}]
    broken.append(Case("new budget, server down", new_budget_unreachable, "unreachable"))
    for case in broken:
        store = {p: p.read_bytes() for p in [*(tmp_path / "store").glob("*.jsonl"), tmp_path / "params.yaml"]}
        case.setup(tmp_path, fake_model.url)
        assert main(["run"]) == 2, case.name
        assert case.message in capsys.readouterr().err
        assert _snapshot(tmp_path / "outputs") == outputs, case.name
        assert len(fake_model.requests) == sent
        for path, data in store.items():  # undo the breakage for the next case
            path.write_bytes(data)
        for extra in set((tmp_path / "store").glob("*.jsonl")) - set(store):
            extra.unlink()


# --- model output: graded or classified, never a crash ------------------------------------------------
HOSTILE_OUTPUTS = {  # problem -> (what the model says, gold, expected normalised answer or None)
    "gigantic": ("step " * 300_000 + "so \\boxed{7}", "7", "7"),
    "control characters": ("\x00\x1b[31mThe answer is 12\x1b[0m.\x07\r\n", "12", "12"),
    "nested boxed": ("\\boxed{\\boxed{5}}", "5", "5"),
    "repeated boxed": ("\\boxed{3} no, wait: \\boxed{4}", "4", "4"),
    "answer in words": ("After all that, the answer is forty-two.", "42", "42"),
    "unbalanced boxes": ("\\boxed{" * 2000, "1", None),
    "no answer": ("I would rather not say.", "9", None),
    "empty": ("", "3", None),
}


@pytest.fixture
def scripted_model():
    """A chat endpoint that answers each problem with the scripted text for it (real HTTP, counted)."""
    sent: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][-1]["content"]
            name = next(n for n in HOSTILE_OUTPUTS if f"<<{n}>>" in prompt)
            sent.append(name)
            data = json.dumps({
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": HOSTILE_OUTPUTS[name][0]}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", sent
    server.shutdown()
    server.server_close()


def test_hostile_model_output_is_graded_or_classified_never_a_crash(project, scripted_model, tmp_path):
    url, sent = scripted_model
    rows = [{"id": name, "problem": f"<<{name}>>", "answer": gold} for name, (_, gold, _) in HOSTILE_OUTPUTS.items()]
    (tmp_path / "hostile.jsonl").write_bytes(_lines(*rows))
    project(url, data={"source": str(tmp_path / "hostile.jsonl")}, budgets={"method": "prompt", "requested": [16]},
            sampling={"samples": 1, "vote_samples": 1, "concurrency": 2})

    assert main(["run"]) == 0
    assert sorted(sent) == sorted(HOSTILE_OUTPUTS)
    samples = pd.read_csv("outputs/samples.csv", dtype={"answer": str}, keep_default_na=False).set_index("problem_id")
    for name, (_, _, expected) in HOSTILE_OUTPUTS.items():
        row = samples.loc[name]
        if expected is None:
            assert row["answer"] == "" and row["status"] != "ok", name
        else:
            assert row["answer"] == expected and row["status"] == "ok", name
            assert str(row["correct"]) == "True", name
    assert samples.loc["empty", "status"] == "empty"
    assert not any(ch in Path("outputs/samples.csv").read_text() for ch in "\x00\x07\x1b")


@pytest.mark.parametrize(("text", "answer"), [(t, a) for t, _, a in HOSTILE_OUTPUTS.values()])
def test_answer_extraction_of_hostile_output_is_total_and_grades_what_it_extracted(text, answer):
    got = normalize_answer(extract_answer(text))
    assert got == answer
    # graded right against its own answer and wrong against another: grading read the extracted answer
    assert is_equivalent(extract_answer(text), answer or "0") is (answer is not None)
    assert is_equivalent(extract_answer(text), "-12345") is False


def test_the_real_aime_and_math500_files_pass_the_row_checks():
    """The checks refuse broken rows, not real benchmarks: AIME answers are integers, MATH's need not be."""
    from conftest import DATA

    from harness.data import load_local_jsonl

    aime = load_local_jsonl(DATA / "aime2024.jsonl", integer_answers=True)
    assert len(aime) == 30 and all(row["answer"].isdigit() for row in aime)
    math500 = load_local_jsonl(DATA / "math500.jsonl")
    assert len(math500) == 500
    with pytest.raises(DataError, match=r"math500.jsonl:\d+: answer = .*AIME answers are integers"):
        load_local_jsonl(DATA / "math500.jsonl", integer_answers=True)
