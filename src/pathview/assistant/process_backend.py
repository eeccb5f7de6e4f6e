"""Run a local model folder in a child process (``pathview serve-model``) and talk to it over localhost.

Importing torch and transformers and running a model holds Python's interpreter lock
for hundreds of milliseconds at a time; in the viewer's own process that freezes the
window. In a child process it cannot, and a model that crashes or runs out of memory
takes only the child down. The child reports loading progress as JSON lines, serves
the OpenAI-compatible API on 127.0.0.1, and exits when this process closes its stdin
(also when this process dies).
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from .backend import DEFAULT_IMAGE_BUDGET, Backend, LoadEvent, ProgressFn, register_backend
from .discovery import AssistantModel, resolve_model
from .errors import AssistantError, AssistantModelLoadError
from .messages import Message
from .openai_backend import OpenAIBackend


@register_backend("process")
class ProcessBackend(Backend):
    """A model folder served by a child process; same answers as the in-process ``transformers`` backend."""

    def __init__(self, model: str | Path | AssistantModel | None = None, device: str = "auto") -> None:
        self.info = model if isinstance(model, AssistantModel) else resolve_model(model)
        self.device_name = device
        self.process: subprocess.Popen | None = None
        self.client: OpenAIBackend | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)

    @property
    def model_name(self) -> str:
        return self.info.name

    @property
    def loaded(self) -> bool:
        return self.client is not None and self.process is not None and self.process.poll() is None

    @property
    def image_budget(self) -> int:
        return self.client.image_budget if self.client is not None else DEFAULT_IMAGE_BUDGET

    def load(self, progress: ProgressFn | None = None) -> None:
        report = progress or (lambda e: None)
        self.close()
        report(LoadEvent("starting the model process", 0.01))
        cmd = [sys.executable, "-m", "pathview", "serve-model", str(self.info.path), "--port", "0",
               "--device", self.device_name, "--events"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, encoding="utf-8")
        self.process = proc
        threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
        for line in proc.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if "url" in record:
                self.client = OpenAIBackend(record["url"], model=record["model"],
                                            image_budget=int(record.get("image_budget") or DEFAULT_IMAGE_BUDGET))
                report(LoadEvent(f"{self.info.name} ready", 1.0))
                return
            if float(record["fraction"]) < 1.0:  # "ready" is said once the address is known
                report(LoadEvent(record["stage"], float(record["fraction"])))
        proc.wait()
        self.process = None
        said = [ln for ln in self._stderr if ln.startswith("pathview: error: ")]
        if said:  # the child's own one-line message already names the model and the cause
            raise AssistantError(said[-1].removeprefix("pathview: error: "))
        last = [ln for ln in self._stderr if ln.strip()][-1:]
        raise AssistantModelLoadError(self.info.path, f"the model process exited with status {proc.returncode}"
                                      + (f" ({last[0]})" if last else ""))

    def _drain(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:  # keep the pipe empty; the last lines explain a failure
            self._stderr.append(line.rstrip("\n"))

    def stream(self, messages: list[Message], stop: threading.Event | None = None,
               max_new_tokens: int = 512) -> Iterator[str]:
        if not self.loaded:
            self.load()
        yield from self.client.stream(messages, stop, max_new_tokens)

    def close(self) -> None:
        proc, self.process, self.client = self.process, None, None
        if proc is None or proc.poll() is not None:
            return
        proc.stdin.close()  # the child shuts its server down and exits
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
