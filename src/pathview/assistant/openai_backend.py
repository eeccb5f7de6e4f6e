"""Talk to any OpenAI-compatible chat server (Ollama, llama.cpp server, vLLM, ``pathview serve-model``).

Streams ``/v1/chat/completions`` with ``stream: true`` (server-sent events) through the
standard library. Patient images stay on this machine: a server that is not on
localhost is refused unless the user explicitly allows it.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from .backend import DEFAULT_IMAGE_BUDGET, Backend, LoadEvent, ProgressFn, register_backend
from .errors import AssistantServerError, RemoteServerRefusedError
from .messages import Message

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_local_host(host: str) -> bool:
    """Return True for names and addresses that mean this machine (no DNS lookup)."""
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_server_url(url: str, allow_remote: bool = False) -> tuple[str, str, int, str]:
    """Return (scheme, host, port, path prefix ending in /v1) or raise when the URL may not be used."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AssistantServerError(url, "expected a URL like http://localhost:11434")
    if not allow_remote and not is_local_host(parts.hostname):
        raise RemoteServerRefusedError(url, parts.hostname)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # urllib's own words ("Port out of range 0-65535") are not for a pathologist
        raise AssistantServerError(url, "its port must be a number from 1 to 65535") from None
    prefix = parts.path.rstrip("/")
    if not prefix.endswith("/v1"):
        prefix += "/v1"
    return parts.scheme, parts.hostname, port, prefix


@register_backend("openai")
class OpenAIBackend(Backend):
    """A chat server speaking the OpenAI API; ``model`` None takes the server's first model."""

    def __init__(self, url: str, model: str | None = None, allow_remote: bool = False, api_key: str | None = None,
                 image_budget: int = DEFAULT_IMAGE_BUDGET, timeout: float = 300.0) -> None:
        self.url = url
        self.scheme, self.host, self.port, self.prefix = check_server_url(url, allow_remote)
        self.model = model
        self.api_key = api_key
        self._image_budget = image_budget
        self.timeout = timeout

    @property
    def model_name(self) -> str:
        return self.model or "(server default)"

    @property
    def image_budget(self) -> int:
        return self._image_budget

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def load(self, progress: ProgressFn | None = None) -> None:
        """Check the server answers and, when no model was named, take the first it serves."""
        report = progress or (lambda e: None)
        report(LoadEvent(f"asking {self.url} for its models", 0.1))
        served = [m for m in self._get_json("/models").get("data", []) if isinstance(m, dict) and m.get("id")]
        if self.model is None:
            if not served:
                raise AssistantServerError(self.url, "the server lists no model; load one there first")
            self.model = served[0]["id"]
        for entry in served:  # `pathview serve-model` says how large an image its model takes
            if entry["id"] == self.model and entry.get("image_budget"):
                self._image_budget = int(entry["image_budget"])
        report(LoadEvent(f"{self.model} ready on {self.host}:{self.port}", 1.0))

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _get_json(self, path: str) -> dict[str, Any]:
        conn = self._connect(10.0)
        try:
            conn.request("GET", self.prefix + path, headers=self._headers())
            resp = conn.getresponse()
            body = resp.read()
        except OSError as exc:
            raise AssistantServerError(self.url, f"no answer ({exc}); is the server running? "
                                       "(e.g. `ollama serve` or `pathview serve-model MODEL --port 8000`)") from None
        finally:
            conn.close()
        if resp.status != 200:
            raise AssistantServerError(self.url, f"HTTP {resp.status} on {path}: {body[:200].decode(errors='replace')}")
        try:
            return json.loads(body)
        except ValueError:
            raise AssistantServerError(self.url, f"{path} did not answer JSON") from None

    def stream(self, messages: list[Message], stop: threading.Event | None = None,
               max_new_tokens: int = 512) -> Iterator[str]:
        if self.model is None:
            self.load()
        body = json.dumps({"model": self.model, "messages": messages, "stream": True,
                           "max_tokens": max_new_tokens, "temperature": 0})
        conn = self._connect(self.timeout)
        finished = threading.Event()
        if stop is not None:  # a blocked read cannot see the event: shut the socket when Stop is pressed,
            # also while a busy server has not begun to answer (another client's turn, a long image prefill)
            threading.Thread(target=_close_on_stop, args=(conn, stop, finished), daemon=True).start()
        try:
            conn.request("POST", self.prefix + "/chat/completions", body=body, headers=self._headers())
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            finished.set()
            conn.close()
            if stop is not None and stop.is_set():
                return
            raise AssistantServerError(self.url, f"no answer ({exc}); is the server running?") from None
        if resp.status != 200:
            detail = resp.read()[:300].decode(errors="replace")
            finished.set()
            conn.close()
            raise AssistantServerError(self.url, f"HTTP {resp.status}: {detail}")
        try:
            for data in _events(resp):
                if stop is not None and stop.is_set():
                    return
                if data == "[DONE]":
                    return
                piece = _delta_text(data, self.url)
                if piece:
                    yield piece
        except OSError:
            if stop is None or not stop.is_set():
                raise AssistantServerError(self.url, "the connection broke while answering") from None
        finally:
            finished.set()
            conn.close()


def _events(resp: http.client.HTTPResponse) -> Iterator[str]:
    """Yield the ``data:`` payloads of a server-sent event stream."""
    data: list[str] = []
    while True:
        raw = resp.readline()
        if not raw:
            return
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))


def _delta_text(data: str, url: str) -> str:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise AssistantServerError(url, f"unreadable stream chunk {data[:80]!r}") from None
    if "error" in chunk:
        err = chunk["error"]
        raise AssistantServerError(url, str(err.get("message", err) if isinstance(err, dict) else err))
    choices = chunk.get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content") or ""


def _close_on_stop(conn: http.client.HTTPConnection, stop: threading.Event, finished: threading.Event) -> None:
    while not finished.is_set():
        if not stop.wait(0.1):
            continue
        sock = conn.sock
        if sock is None:  # Stop came before the connection: shut it once it is there
            finished.wait(0.05)
            continue
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return
