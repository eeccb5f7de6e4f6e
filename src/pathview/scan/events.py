"""The messages between a scan's coordinator and the processes (or Ray actors) that analyse slides.

Plain, picklable dataclasses: they cross process boundaries through a queue and
the Ray object store. The coordinator sends :class:`SlideTask` s; workers answer
with the events below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AnalysisConfig:
    """What every worker needs once per batch: the encoder to load and how to tile."""

    encoder: str = "pathview-he"
    weights: str | None = None
    device: str = "auto"
    tile_mpp: float = 0.5
    tile_size: int = 224
    min_tissue: float = 0.1
    reference: str | None = None
    threads: int | None = None  # torch CPU threads per worker (None: torch's default)


@dataclass(frozen=True)
class SlideTask:
    """Analyse the slide at ``path`` into ``out_dir``; ``key`` names its folder and lock.

    ``slide_mpp`` overrides the slide's pixel size (from --mpp-csv). ``solo`` tasks run
    with nothing prepared beside them: they were in flight when a worker crashed.
    """

    key: str
    path: str
    out_dir: str
    slide_mpp: float | None = None
    solo: bool = False


@dataclass(frozen=True)
class WorkerReady:
    """A worker loaded its encoder (once per batch) and takes tasks."""

    worker: int
    encoder: str
    device: str
    load_s: float
    pid: int = 0


@dataclass(frozen=True)
class WorkerBroken:
    """A worker could not load its encoder: the batch cannot run (``message`` says why)."""

    worker: int
    message: str


@dataclass(frozen=True)
class TaskStarted:
    key: str
    worker: int


@dataclass(frozen=True)
class TileProgress:
    """``done`` of ``total`` tiles of slide ``key`` are encoded."""

    key: str
    done: int
    total: int


@dataclass(frozen=True)
class TaskDone:
    key: str
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class TaskFailed:
    """Slide ``key`` failed: ``kind`` is ``error`` (its own fault), ``oom`` or ``crash`` (the process died)."""

    key: str
    message: str
    kind: str = "error"
    detail: str = ""


@dataclass(frozen=True)
class TaskRequeued:
    """A worker died with ``task`` in flight, not necessarily its fault: run it again, alone."""

    task: SlideTask
