"""Runs ``analyze_slide`` in a child process and hands its events to the GUI as Qt signals.

A relay thread starts the child and waits on its queue (blocking, so it costs the
window nothing) and re-emits each message as a signal, which Qt queues to the GUI thread. Cancel
sets the child's cancel event, checked between batches: the run ends within a batch
and leaves no ``summary.json``, so a half-made folder is never taken for finished.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from .analysis_process import context, lower_priority, run_analysis

POLL_S = 0.2


class AnalysisWorker(QObject):
    """One analysis at a time; ``finished`` carries (quickhash, output folder), ``failed`` (error type, message)."""

    progress = Signal(object)  # AnalyzeEvent
    finished = Signal(str, str)
    failed = Signal(str, str)
    cancelled = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relay: threading.Thread | None = None
        self._process = None
        self._stop = threading.Event()
        self._running = False
        self.quickhash = ""

    @property
    def busy(self) -> bool:
        """True from ``start`` until just before the final signal (so its handler may start the next run)."""
        return self._running

    def start(self, slide_path: str, quickhash: str, out_dir: Path, *, slide_mpp: float | None = None,
              encoder: str = "pathview-he", device: str = "auto", tile_mpp: float = 0.5,
              reference: str | None = None) -> bool:
        """Start analysing ``slide_path`` into ``out_dir``; False when one is already running.

        ``reference``: a reference bank file (None: tiles are compared within the slide).
        """
        if self.busy:
            return False
        self._stop = stop = threading.Event()
        self._running = True
        self.quickhash = quickhash
        options = {"encoder": encoder, "device": device, "slide_mpp": slide_mpp, "tile_mpp": tile_mpp,
                   "reference": reference}
        # Everything multiprocessing happens on the relay thread: the first start launches the fork
        # server (which imports torch) and the resource tracker, seconds the window must not wait.
        self._relay = threading.Thread(target=self._run, name="analysis-relay", daemon=True,
                                       args=(slide_path, quickhash, str(out_dir), options, stop))
        self._relay.start()
        return True

    def _run(self, slide_path: str, quickhash: str, out_dir: str, options: dict, stop: threading.Event) -> None:
        try:
            lower_priority()
            ctx = context()
            events, cancel = ctx.Queue(), ctx.Event()
            process = ctx.Process(target=run_analysis, name="pathview-analysis", daemon=True,
                                  args=(slide_path, out_dir, options, events, cancel))
            process.start()
        except OSError as exc:
            self._finish(self.failed, "ProcessError", f"cannot start the analysis ({exc})")
            return
        self._process = process
        while True:
            if stop.is_set():
                cancel.set()
            alive = process.is_alive()  # read before waiting: a last message may arrive as it ends
            try:
                message = events.get(timeout=POLL_S)
            except queue.Empty:
                if not alive:
                    self._finish(self.failed, "ProcessDied", "the analysis stopped unexpectedly "
                               f"(its process ended with code {process.exitcode}); nothing was kept")
                    return
                continue
            kind = message[0]
            if kind == "progress":
                self._emit(self.progress, message[1])
                continue
            process.join()
            if kind == "finished":
                self._finish(self.finished, quickhash, out_dir)
            elif kind == "cancelled":
                self._finish(self.cancelled, message[1])
            else:
                self._finish(self.failed, message[1], message[2])
            return

    def _finish(self, signal, *args: object) -> None:
        self._running = False
        self._emit(signal, *args)

    @staticmethod
    def _emit(signal, *args: object) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the window closed while the analysis ran: nobody is listening
            pass

    def cancel(self) -> None:
        """Ask the running analysis to stop at the next batch (passed on within a fraction of a second)."""
        self._stop.set()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel and wait briefly (window closing); a child that does not stop in time is ended."""
        self.cancel()
        if self._relay is not None:
            self._relay.join(timeout)
        if self._process is not None and self._process.is_alive():
            self._process.terminate()  # summary.json is written last, so nothing reads as finished
            self._process.join(1.0)
