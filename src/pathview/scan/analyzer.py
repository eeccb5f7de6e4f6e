"""One worker's side of a scan: load the encoder once, then analyse slide after slide with it.

Used in a local worker process (:mod:`pathview.scan.worker`) and in a Ray actor
(:mod:`pathview.scan.ray_exec`). Two slides may be in :meth:`SlideAnalyzer.run` at
once, on two threads: while one encodes, the next is opened, its tissue found and
its tile grid laid; it starts encoding only when the first has finished encoding
(:class:`EncodeTurns`), so the device serves one slide at a time and never waits
for a slide to be read. Every failure of a slide becomes a
:class:`~pathview.scan.events.TaskFailed` with a message for a person; a GPU
out-of-memory that gets past the encoder's own batch halving is one of them, after
the GPU's cache is emptied so the next slide starts clean.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

from ..errors import PathviewError
from .events import AnalysisConfig, SlideTask, TaskDone, TaskFailed, TileProgress

Emit = Callable[[object], None]

#: Slides one analyzer works on at once: one encoding, the next being prepared.
SLOTS = 2


def worker_device(device: str, worker: int) -> str:
    """Return the device worker ``worker`` uses: on a multi-GPU machine each worker takes its own GPU."""
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return f"cuda:{worker % torch.cuda.device_count()}"
    return device


class EncodeTurns:
    """Let one slide at a time encode, in the order the slides arrived; the others prepare meanwhile."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._next = 0
        self._open: set[int] = set()

    def take(self) -> int:
        """Return a ticket; its slide may encode once every earlier ticket is done encoding."""
        with self._cv:
            ticket = self._next
            self._next += 1
            self._open.add(ticket)
            return ticket

    def wait(self, ticket: int) -> None:
        with self._cv:
            self._cv.wait_for(lambda: min(self._open) == ticket)

    def done(self, ticket: int) -> None:
        with self._cv:
            self._open.discard(ticket)
            self._cv.notify_all()


class SlideAnalyzer:
    """Hold one loaded encoder for a whole batch and analyse slides with it."""

    def __init__(self, config: AnalysisConfig, worker: int = 0) -> None:
        import torch

        from ..analysis.runner import resolve_device
        from ..encoders import load_encoder

        if config.threads:
            torch.set_num_threads(config.threads)
        self.config = config
        self.worker = worker
        self.device = resolve_device(worker_device(config.device, worker))
        t0 = time.perf_counter()
        self.encoder = load_encoder(config.encoder, config.weights, device=self.device)
        self.reference = None
        if config.reference is not None:  # loaded once too, not once per slide
            from ..analysis.reference import load_bank

            self.reference = load_bank(config.reference)
        self.load_s = time.perf_counter() - t0
        self.turns = EncodeTurns()

    @property
    def label(self) -> str:
        return self.encoder.label

    def run(self, task: SlideTask, emit: Emit) -> TaskDone | TaskFailed:
        """Analyse one slide; report tile progress through ``emit``; never raise for a slide's fault."""
        import torch

        from ..analysis.analyze import analyze_slide

        ticket = self.turns.take()

        def on_progress(event: object) -> None:
            stage = getattr(event, "stage", "")
            if stage == "tissue":  # grid laid, encoding next: wait until the slide before is done encoding
                self.turns.wait(ticket)
            elif stage == "encode":
                emit(TileProgress(task.key, event.done, event.total))
            elif stage == "score":
                self.turns.done(ticket)

        c = self.config
        t0 = time.perf_counter()
        try:
            summary = analyze_slide(task.path, task.out_dir, encoder=self.encoder, device=self.device,
                                    slide_mpp=task.slide_mpp, tile_mpp=c.tile_mpp, tile_size=c.tile_size,
                                    min_tissue=c.min_tissue, reference=self.reference, progress=on_progress)
            return TaskDone(task.key, dict(summary), time.perf_counter() - t0)
        except PathviewError as exc:
            return TaskFailed(task.key, str(exc), "error")
        except torch.OutOfMemoryError:
            pass  # answered below, once the exception's frames (and the tensors they hold) are gone
        except Exception as exc:  # a bug or an unforeseen library error: this slide only
            return TaskFailed(task.key, f"unexpected {type(exc).__name__}: {exc}", "error", traceback.format_exc())
        finally:
            self.turns.done(ticket)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return TaskFailed(task.key, f"{self.device} ran out of memory even one tile at a time; free the GPU "
                          "(another program may hold it) or scan this slide with --device cpu", "oom")
