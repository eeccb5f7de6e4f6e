"""A small OpenAI-compatible chat server on localhost, backed by any assistant backend.

``pathview serve-model MODEL --port N`` loads a model once and lets several viewers (or
``pathview ask --server``) share it. It speaks the part of the API the assistant uses:
``GET /v1/models`` and ``POST /v1/chat/completions`` with or without ``stream: true``
(server-sent events). It listens on 127.0.0.1 only and answers one request at a time;
a client that disconnects stops its generation.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .backend import Backend

MAX_BODY = 64 * 1024 * 1024


class ModelServer(ThreadingHTTPServer):
    """Serve ``backend`` at http://127.0.0.1:``port`` (0 picks a free port; see ``url``)."""

    daemon_threads = True

    def __init__(self, backend: Backend, port: int = 8000) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.backend = backend
        self.generate_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> threading.Thread:
        """Serve on a daemon thread (tests, embedding); ``shutdown()`` ends it."""
        thread = threading.Thread(target=self.serve_forever, name="assistant-server", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # requests carry patient images: nothing about them goes to a log

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": {"message": message, "type": "invalid_request_error"}})

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path.rstrip("/") != "/v1/models":
            return self._error(404, f"no route {self.path}")
        self._json(200, {"object": "list", "data": [
            {"id": self.server.backend.model_name, "object": "model", "owned_by": "pathview",
             "image_budget": self.server.backend.image_budget}]})

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._error(404, f"no route {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            return self._error(400, "missing or oversized request body")
        try:
            request = json.loads(self.rfile.read(length))
            messages = request["messages"]
        except (ValueError, KeyError, TypeError):
            return self._error(400, "the body must be JSON with 'messages'")
        max_tokens = int(request.get("max_tokens") or request.get("max_completion_tokens") or 512)
        with self.server.generate_lock:
            if request.get("stream"):
                self._stream(messages, max_tokens)
            else:
                self._complete(messages, max_tokens)

    def _chunk(self, cid: str, delta: dict[str, Any], finish: str | None) -> bytes:
        payload = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                   "model": self.server.backend.model_name,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(payload)}\n\n".encode()

    def _stream(self, messages: list[dict[str, Any]], max_tokens: int) -> None:
        cid = f"chatcmpl-{uuid.uuid4().hex[:16]}"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        stop = threading.Event()
        try:
            self.wfile.write(self._chunk(cid, {"role": "assistant"}, None))
            for piece in self.server.backend.stream(messages, stop, max_tokens):
                self.wfile.write(self._chunk(cid, {"content": piece}, None))
                self.wfile.flush()
            self.wfile.write(self._chunk(cid, {}, "stop"))
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            stop.set()  # the client left: stop generating for nobody
        except Exception as exc:  # reported in the stream, the way OpenAI-compatible servers do
            stop.set()
            try:
                self.wfile.write(f"data: {json.dumps({'error': {'message': str(exc)}})}\n\n".encode())
            except OSError:
                pass

    def _complete(self, messages: list[dict[str, Any]], max_tokens: int) -> None:
        try:
            text = "".join(self.server.backend.stream(messages, None, max_tokens))
        except Exception as exc:
            return self._error(500, str(exc))
        self._json(200, {"id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "object": "chat.completion",
                         "created": int(time.time()), "model": self.server.backend.model_name,
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}]})
