"""The OpenAI-compatible path: a real server on localhost (``serve-model``), streamed over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import CMU_SVS

from pathview.assistant import RemoteServerRefusedError, create_backend
from pathview.assistant.errors import AssistantServerError
from pathview.assistant.messages import message, png_bytes
from pathview.assistant.openai_backend import check_server_url
from pathview.cli import main


def test_streaming_over_http_gives_the_local_models_answer(served):
    local, server = served
    remote = create_backend("openai", url=server.url)
    remote.load()
    assert remote.model_name == "tiny-gemma3" and remote.image_budget == local.image_budget == 32
    msgs = [message("user", "Describe the tissue.", [png_bytes(np.full((40, 40, 3), 200, np.uint8))])]
    pieces = list(remote.stream(msgs, max_new_tokens=10))
    assert len(pieces) >= 2 and "".join(pieces) == "".join(local.stream(msgs, max_new_tokens=10))


def test_stop_over_http_within_a_second(served):
    _, server = served
    remote = create_backend("openai", url=server.url + "/v1", model="tiny-gemma3")
    stop = threading.Event()
    stream = remote.stream([message("user", "Describe everything.")], stop, max_new_tokens=1500)
    next(stream)
    stop.set()
    t0 = time.perf_counter()
    rest = list(stream)
    assert time.perf_counter() - t0 < 1.0 and len(rest) < 10
    # The server noticed the client leave, stopped generating and serves the next request.
    answer = "".join(remote.stream([message("user", "Again.")], max_new_tokens=3))
    assert answer


def test_stop_within_a_second_while_a_busy_server_has_not_begun_to_answer():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Busy(BaseHTTPRequestHandler):  # e.g. answering another viewer first, or a long image prefill
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(5)
            try:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'data: {"choices": [{"delta": {"content": "late"}}]}\n\ndata: [DONE]\n\n')
            except OSError:
                pass  # the client stopped long ago

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        remote = create_backend("openai", url=f"http://127.0.0.1:{server.server_address[1]}", model="m")
        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        t0 = time.perf_counter()
        assert list(remote.stream([message("user", "Is there necrosis?")], stop)) == []
        assert time.perf_counter() - t0 < 1.5
    finally:
        server.shutdown()
        server.server_close()


def test_plain_completion_and_errors_are_openai_shaped(served):
    _, server = served
    body = json.dumps({"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4}).encode()
    req = urllib.request.Request(server.url + "/v1/chat/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        reply = json.loads(resp.read())
    assert reply["object"] == "chat.completion" and reply["choices"][0]["message"]["content"]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.url + "/v1/embeddings", timeout=10)
    assert err.value.code == 404


def test_only_servers_on_this_machine_unless_allowed():
    for url in ("http://localhost:11434", "127.0.0.1:8080", "http://[::1]:8000/v1", "http://127.0.0.2:1"):
        assert check_server_url(url)[1] in ("localhost", "127.0.0.1", "::1", "127.0.0.2")
    for url in ("http://example.org:11434", "https://10.0.0.5/v1", "http://gpu-box.local:8000"):
        with pytest.raises(RemoteServerRefusedError, match="must run on this machine.*--allow-remote"):
            create_backend("openai", url=url)
    assert create_backend("openai", url="http://example.org:11434", allow_remote=True).host == "example.org"
    for url in ("http://localhost.evil.com", "http://127.0.0.1@evil.com", "http://[::ffff:10.0.0.5]"):
        with pytest.raises(RemoteServerRefusedError):
            check_server_url(url)
    for url in ("http://localhost:99999", "http://127.0.0.1:port"):
        with pytest.raises(AssistantServerError, match="port must be a number"):
            check_server_url(url)


def test_a_server_that_is_not_running_is_named():
    with pytest.raises(AssistantServerError, match="is the server running"):
        create_backend("openai", url="http://127.0.0.1:9").load()


def test_cli_ask_streams_from_a_server_and_prints_json(served, tmp_path):
    _, server = served
    env = {**os.environ, "PATHVIEW_WORKSPACE": str(tmp_path / "workspace")}
    cmd = [sys.executable, "-m", "pathview", "ask", str(CMU_SVS), "Is there keratin?", "--region", "500,800,700,600",
           "--server", server.url, "--max-tokens", "5"]
    res = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["region"] == [500, 800, 700, 600] and out["model"] == "tiny-gemma3" and out["answer"]
    assert "not a diagnosis" in out["notice"] and "0.499 µm/px" in out["context"] and out["state"] == "done"
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0 and res.stdout.strip() == out["answer"].strip()
    assert "not a diagnosis" in res.stderr

def test_cli_refuses_a_remote_server_in_one_line(capsys):
    code = main(["ask", str(CMU_SVS), "What is this?", "--server", "http://example.org:8000"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("pathview: error: refusing to send slide images") and err.count("\n") == 1
