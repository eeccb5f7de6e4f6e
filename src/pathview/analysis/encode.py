"""Encode a slide's tiles into ``tiles.h5``: readers → device → feature store, overlapped.

Stages: :class:`~pathview.analysis.prefetch.TilePrefetcher` reads big regions on
threads (or processes, on a GPU) and packs tiles into (pinned) batches; :class:`~pathview.analysis.runner.BatchRunner`
copies each batch to the device without blocking and embeds it (preprocessing on the
device, bf16 autocast on CUDA, halving the batch on out-of-memory); features come back
with an asynchronous copy and are written one batch behind, so the GPU is never idle
while the CPU writes. Progress goes to a plain callback; a ``threading.Event`` cancels.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..encoders import LoadedEncoder
from ..errors import PathviewError
from ..slide import Slide, TileGrid
from ..wording import count
from .prefetch import HostBatch, TilePrefetcher
from .runner import BatchRunner, resolve_device
from .store import TILES_FILE, TileStoreWriter, coords_attrs, store_attrs


@dataclass(frozen=True)
class EncodeProgress:
    """One progress event: ``kind`` is ``start``, ``batch``, ``oom`` (batch size halved) or ``done``."""

    kind: str
    done: int
    total: int
    batch_size: int
    tiles_per_s: float = 0.0
    message: str = ""


@dataclass(frozen=True)
class EncodeResult:
    """What an encoding run wrote and how fast it went; ``unreadable``: grid indices of tiles left out
    because their image data could not be decoded."""

    path: Path
    tiles: int
    feature_dim: int
    seconds: float
    tiles_per_s: float
    batch_size: int
    device: str
    encoder: str
    unreadable: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))


class UnreadableSlideError(PathviewError):
    """Not one tile of the slide's tissue could be decoded: there is nothing to encode (no tiles.h5 is written,
    an older one is left as it was)."""

    def __init__(self, slide: str | os.PathLike, tiles: int) -> None:
        self.slide = Path(slide)
        super().__init__(f"no tile of '{self.slide.name}' could be read ({count(tiles, 'tile')} tried): "
                         "its image data is damaged")


class EncodeCancelled(PathviewError):
    """The run was cancelled; no ``tiles.h5`` was written (an older one is left untouched)."""

    def __init__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        super().__init__(f"encoding cancelled after {done} of {total} tiles; tiles.h5 not written (an older one, "
                         "if any, is left as it was)")


ProgressFn = Callable[[EncodeProgress], None]
#: Called with each batch's grid indices and uint8 pixels (n, H, W, 3), e.g. for artifact QC on the
#: pixels already read; the pixels are only valid during the call.
TilesFn = Callable[[np.ndarray, np.ndarray], None]


def output_path(out: str | os.PathLike) -> Path:
    """Return the ``tiles.h5`` path for an output folder (or a path that already names an .h5 file)."""
    p = Path(out)
    return p if p.suffix == ".h5" else p / TILES_FILE


def encode_slide(
    slide: Slide,
    grid: TileGrid,
    encoder: LoadedEncoder,
    out: str | os.PathLike,
    *,
    device: str | torch.device | None = "auto",
    batch_size: int | None = None,
    workers: int | None = None,
    block_tiles: int = 8,
    readers: str = "auto",
    compile: bool = False,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    runner: BatchRunner | None = None,
    on_tiles: TilesFn | None = None,
) -> EncodeResult:
    """Encode every tile of ``grid`` with ``encoder`` and write ``out``/tiles.h5 atomically.

    Raises :class:`EncodeCancelled` when ``cancel`` is set (checked between batches).
    Pass a warmed-up ``runner`` (same encoder) to reuse it, e.g. a compiled one.
    ``on_tiles`` sees the pixels of every readable tile while the device embeds them (no second read);
    tiles whose image data is damaged get no row in tiles.h5 (see ``EncodeResult.unreadable``).
    ``workers`` (readers) defaults to 12 on a GPU (it must keep up), 4 on a CPU. ``readers`` is
    ``threads``, ``processes`` or ``auto``: processes on a GPU for grids worth their start-up.
    """
    dev = runner.device if runner is not None else resolve_device(device)
    workers = workers or default_workers(dev)
    processes = use_reader_processes(readers, dev, len(grid), workers)
    args = (slide, grid, encoder, out, dev, batch_size, workers, block_tiles, processes, compile, progress, cancel,
            runner, on_tiles)
    if dev.type == "cpu":
        with cpu_threads(1):  # parallel over parts of each batch instead (see BatchRunner)
            return _encode(*args)
    return _encode(*args)


def default_workers(device: torch.device) -> int:
    """Readers by default: 12 on a GPU (they must keep up with it), 4 on a CPU (which also encodes)."""
    return min(12 if device.type == "cuda" else 4, os.cpu_count() or 4)


#: Below this many tiles reader threads finish in about two seconds: starting a dozen processes (about a
#: second of CPU on every core, while threads bridge the start) is not worth it.
PROCESS_READERS_MIN_TILES = 4096
READER_KINDS = ("auto", "threads", "processes")


def use_reader_processes(readers: str, device: torch.device, tiles: int, workers: int) -> bool:
    """Decide between reader threads and processes.

    Why processes on a GPU: there the readers must deliver thousands of tiles/s, and a dozen
    threads in one process fight over the GIL with each other and with the thread that
    launches the GPU kernels. On a CPU the encoder itself is the bottleneck, and threads
    start instantly.
    """
    if readers not in READER_KINDS:
        raise ValueError(f"readers must be one of {', '.join(READER_KINDS)}, got {readers!r}")
    if readers == "auto":
        return device.type == "cuda" and workers > 1 and tiles >= PROCESS_READERS_MIN_TILES
    return readers == "processes"


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run torch's CPU ops on ``n`` threads for a while.

    Why: torch's OpenMP threads spin while they wait; with as many of them as cores,
    any other busy thread (the tile readers) makes every op several times slower
    (measured: 8 instead of 100 tiles/s on two cores).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(min(n, before))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _encode(slide: Slide, grid: TileGrid, encoder: LoadedEncoder, out: str | os.PathLike, dev: torch.device,
            batch_size: int | None, workers: int, block_tiles: int, processes: bool, compile: bool,
            progress: ProgressFn | None,
            cancel: threading.Event | None, runner: BatchRunner | None, on_tiles: TilesFn | None) -> EncodeResult:
    run = _Run(grid, progress)
    own_runner = runner is None
    if runner is None:
        runner = BatchRunner(encoder, dev, batch_size, compile=compile, on_oom=run.on_oom,
                             cpu_workers=os.cpu_count() or 1)
    else:
        runner.on_oom = run.on_oom
    try:
        path = run.encode(slide, encoder, output_path(out), runner, workers, block_tiles, processes, cancel, on_tiles)
    finally:
        if own_runner:
            runner.close()
    seconds = time.perf_counter() - run.t0
    unreadable = np.sort(np.concatenate(run.unreadable)) if run.unreadable else np.empty(0, np.int64)
    result = EncodeResult(path, run.total - len(unreadable), encoder.embed_dim, seconds, run.total / max(seconds, 1e-9),
                          runner.batch_size, str(dev), encoder.label, unreadable)
    run.emit(EncodeProgress("done", run.total, run.total, runner.batch_size, result.tiles_per_s, f"wrote {path}"))
    return result


class _Run:
    """One encoding run's state: counts, clock, events."""

    def __init__(self, grid: TileGrid, progress: ProgressFn | None) -> None:
        self.grid = grid
        self.total = len(grid)
        self.done = 0
        self.batch_size = 0
        self.emit: ProgressFn = progress or (lambda _e: None)
        self.t0 = time.perf_counter()
        self.pending: deque = deque()
        self.unreadable: list[np.ndarray] = []

    def rate(self) -> float:
        return self.done / max(time.perf_counter() - self.t0, 1e-9)

    def on_oom(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.emit(EncodeProgress("oom", self.done, self.total, batch_size, self.rate(),
                                 f"out of memory: batch size now {batch_size}"))

    def flush(self, writer: TileStoreWriter, keep: int) -> None:
        """Write the pending batches but the last ``keep`` (whose features may still be on their way)."""
        while len(self.pending) > keep:
            indices, feats, event, damaged = self.pending.popleft()
            if event is not None:
                event.synchronize()
            feats, read = feats.numpy(), len(indices)
            if damaged is not None:  # their pixels were black: no row, but say where they are
                writer.skip(self.grid.coords[indices[damaged]])
                self.unreadable.append(indices[damaged])
                indices, feats = indices[~damaged], feats[~damaged]
            writer.append(self.grid.coords[indices], self.grid.tissue[indices], feats)
            self.done += read
            self.emit(EncodeProgress("batch", self.done, self.total, self.batch_size, self.rate()))

    def encode(self, slide: Slide, encoder: LoadedEncoder, path: Path, runner: BatchRunner, workers: int,
               block_tiles: int, processes: bool, cancel: threading.Event | None,
               on_tiles: TilesFn | None = None) -> Path:
        cuda = runner.device.type == "cuda"
        self.batch_size = runner.batch_size
        self.emit(EncodeProgress("start", 0, self.total, runner.batch_size, message=f"{encoder.label} on {runner.device}"))
        attrs = store_attrs(slide, self.grid, encoder.label, encoder.embed_dim)
        with TileStoreWriter(path, self.total, encoder.embed_dim, attrs,
                             coords_attrs=coords_attrs(slide, self.grid)) as writer, \
                TilePrefetcher(slide, self.grid, runner.batch_size, workers=workers, block_tiles=block_tiles,
                               pin=cuda, processes=processes, cancel=cancel) as prefetcher:
            for batch in prefetcher:
                if cancel is not None and cancel.is_set():
                    raise EncodeCancelled(self.done, self.total)
                feats = runner(batch.pixels)
                if on_tiles is not None:  # on the host copy, while the device works
                    _call_on_readable(on_tiles, batch)
                if cuda:
                    host, event = _to_host_async(feats, runner.device)
                    prefetcher.release(batch, event)  # its tiles are on the device once this batch is done
                    self.pending.append((batch.indices, host, event, batch.damaged))
                    self.flush(writer, keep=1)  # write the previous batch while this one computes
                else:
                    prefetcher.release(batch)
                    self.pending.append((batch.indices, feats.cpu(), None, batch.damaged))
                    self.flush(writer, keep=0)
            self.flush(writer, keep=0)
            if cancel is not None and cancel.is_set() and self.done < self.total:
                raise EncodeCancelled(self.done, self.total)
            if self.total and not writer.rows:
                raise UnreadableSlideError(slide.path, self.total)
            return writer.commit()


def _call_on_readable(on_tiles: TilesFn, batch: HostBatch) -> None:
    pixels = batch.pixels.numpy()
    if batch.damaged is None:
        on_tiles(batch.indices, pixels)
    else:
        on_tiles(batch.indices[~batch.damaged], pixels[~batch.damaged])


def _to_host_async(feats: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.cuda.Event]:
    """Start copying ``feats`` into pinned host memory; return it and the event that marks the copy done."""
    host = torch.empty(feats.shape, dtype=feats.dtype, pin_memory=True)
    host.copy_(feats, non_blocking=True)
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(device))
    return host, event
