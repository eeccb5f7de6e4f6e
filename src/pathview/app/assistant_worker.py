"""Runs the assistant off the GUI thread and hands its events to the GUI as Qt signals.

Model loading and answering happen on Python worker threads (the core's own); every
event crosses to the GUI thread through a queued signal, so the window never waits on
a model. Stop sets the core's stop event: generation ends within a token or two.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from ..assistant import Annotation, Backend, ChatSession, LoadEvent, Turn


class AssistantWorker(QObject):
    """Load a backend and answer questions in the background; one question at a time."""

    load_progress = Signal(str, float)
    load_failed = Signal(str)
    loaded = Signal(str)
    turn_started = Signal(object)
    piece = Signal(int, str)
    turn_finished = Signal(int, str, str)  # turn id, state (done, stopped, failed), error message
    idle = Signal()  # the job ended (loaded, answered, stopped or failed)
    saved = Signal(int, str)  # turn id, annotation id
    save_failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._running = False

    @property
    def busy(self) -> bool:
        return self._running

    @staticmethod
    def _emit(signal, *args: object) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the panel was closed while the model worked: nobody is listening
            pass

    def _report(self, event: LoadEvent) -> None:
        if event.error is None:
            self._emit(self.load_progress, event.stage, event.fraction)

    def _ensure_loaded(self, backend: Backend) -> bool:
        if backend.loaded:
            return True
        try:
            backend.load(self._report)
        except Exception as exc:  # shown in the panel; the window stays usable
            self._emit(self.load_failed, str(exc))
            return False
        self._emit(self.loaded, backend.model_name)
        return True

    def load(self, backend: Backend) -> bool:
        """Start loading ``backend``; False when busy."""
        return self._start(lambda: self._ensure_loaded(backend))

    def ask(self, session: ChatSession, question: str, box: tuple[int, int, int, int],
            annotation: Annotation | None = None, max_new_tokens: int = 512) -> bool:
        """Start answering ``question`` about ``box`` (loading the model first if needed); False when busy."""

        def run() -> None:
            if not self._ensure_loaded(session.backend):
                return
            try:
                turn = session.ask(question, box, annotation)
            except Exception as exc:
                self._emit(self.load_failed, str(exc))
                return
            self._answer(session, turn, max_new_tokens)

        return self._start(run)

    def _answer(self, session: ChatSession, turn: Turn, max_new_tokens: int) -> None:
        self._emit(self.turn_started, turn)
        try:
            for text in session.answer(turn, self._stop, max_new_tokens):
                self._emit(self.piece, turn.id, text)
        except Exception as exc:  # the turn is marked failed; the message goes to the panel
            self._emit(self.turn_finished, turn.id, "failed", str(exc))
            return
        self._emit(self.turn_finished, turn.id, turn.state, "")

    def _start(self, target) -> bool:
        if self.busy:
            return False
        self._stop = threading.Event()
        self._running = True

        def job() -> None:
            try:
                target()
            finally:
                self._running = False
                self._emit(self.idle)

        self._thread = threading.Thread(target=job, name="assistant-gui-worker", daemon=True)
        self._thread.start()
        return True

    def save(self, turn: Turn, store, quickhash: str) -> None:
        """File ``turn`` as a finding on a short thread (the store writes to disk with fsync)."""
        from ..assistant.findings_link import save_answer

        def run() -> None:
            try:
                self._emit(self.saved, turn.id, save_answer(store, quickhash, turn))
            except Exception as exc:  # shown beside the answer; nothing is lost
                self._emit(self.save_failed, turn.id, str(exc))

        threading.Thread(target=run, name="assistant-save", daemon=True).start()

    def stop(self) -> None:
        """Ask the running answer to end (within a second)."""
        self._stop.set()

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop and wait briefly for the worker (window closing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
