"""A long-lived local worker process: one encoder load, then slides from a queue until told to stop.

Slides run in a process of their own so that a crash in native code (a decoder
fed a damaged file, a CUDA fault that poisons the context) costs one slide, not the
batch: the coordinator sees the process die, records the slide and starts a new
worker. The worker exits by itself if the coordinator disappears (e.g. SIGKILL),
so no orphan keeps writing a slide whose lock is about to be recovered.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .events import AnalysisConfig, TaskStarted, WorkerBroken, WorkerReady

_WATCH_S = 0.5
_PR_SET_PDEATHSIG = 1


def _exit_when_orphaned(coordinator: int) -> None:
    """Die with the coordinator: at once on Linux (the kernel's parent-death signal), else within 0.5 s."""
    if sys.platform.startswith("linux"):
        try:  # our parent is the forkserver, which exits the moment the coordinator does
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while True:
            time.sleep(_WATCH_S)
            try:
                os.kill(coordinator, 0)
            except ProcessLookupError:
                os._exit(3)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="scan-orphan-watch", daemon=True).start()


class _Sender:
    """Send events down the pipe from several threads, one whole message at a time."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def put(self, event: object) -> None:
        with self.lock:
            self.conn.send(event)


def worker_main(worker: int, config: AnalysisConfig, tasks, pipe, coordinator: int,
                stderr_to: str | None = None) -> None:
    """Run in the worker process: load the encoder, then answer every task put on ``tasks``.

    ``stderr_to``: a log file that takes the process's stderr (library warnings, native
    messages, the traceback of a crash), so they neither garble the progress bar nor get lost.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    _exit_when_orphaned(coordinator)
    if stderr_to is not None:
        fd = os.open(stderr_to, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
    events = _Sender(pipe)
    from ..errors import PathviewError
    from .analyzer import SLOTS, SlideAnalyzer

    try:
        analyzer = SlideAnalyzer(config, worker)
    except PathviewError as exc:
        events.put(WorkerBroken(worker, str(exc)))
        return
    events.put(WorkerReady(worker, analyzer.label, str(analyzer.device), analyzer.load_s, os.getpid()))

    def one(task) -> None:
        events.put(TaskStarted(task.key, worker))
        events.put(analyzer.run(task, events.put))

    # The coordinator sends at most SLOTS tasks ahead, so each gets a thread at once.
    with ThreadPoolExecutor(SLOTS, thread_name_prefix="scan-slide") as pool:
        while (task := tasks.get()) is not None:
            pool.submit(one, task)
