"""A model server that dies under the run is named as the cause, not reported as network timeouts.

The embedded server is started as usual (embedded.embedded_server: a launcher, a free port, readiness on
/v1/models), but the program is a small real HTTP server that answers /v1/models and crashes with SIGSEGV on
its first completion, as llama.cpp's AMX kernels did on this project's CI machine. The run must stop with
one line that says the server was killed by SIGSEGV and what to do, and exit 2.
"""

from __future__ import annotations

import sys
import textwrap

from harness import preflight
from harness.cli import main
from harness.servers import embedded

CRASHING_SERVER = textwrap.dedent('''
    import json, os, signal, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            print("decoding the first token", flush=True)
            os.kill(os.getpid(), signal.SIGSEGV)

    HTTPServer(("127.0.0.1", int(sys.argv[sys.argv.index("--port") + 1])), Handler).serve_forever()
''')


def test_a_server_killed_by_a_signal_mid_run_is_named_with_what_to_do(project, tmp_path, monkeypatch, capsys):
    script = tmp_path / "crashing_server.py"
    script.write_text(CRASHING_SERVER)
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv(embedded.SERVER_ENV, "python")
    monkeypatch.setattr(embedded, "check_installed", lambda *_, **__: None)
    monkeypatch.setattr(preflight, "check_installed", lambda *_, **__: None)
    monkeypatch.setattr(embedded, "model_path", lambda *_: gguf)
    monkeypatch.setattr(embedded, "python_server_command",
                        lambda gguf, port, model, threads: [sys.executable, str(script), "--port", str(port)])
    project("embedded", sampling={"samples": 1, "vote_samples": 1, "concurrency": 1},
            model={"max_retries": 1, "backoff_base": 0.01, "backoff_max": 0.05, "request_timeout": 30})
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "the embedded llama.cpp server was killed by SIGSEGV while the stage was using it" in err
    assert "decoding the first token" in err  # the end of its own output
    assert "wheels" in err and "rerun" in err
