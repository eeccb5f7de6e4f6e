"""Feed the device: tiles read on worker threads or processes, packed into reusable (pinned) batch buffers.

One background thread drives :func:`~pathview.slide.tile_reader.iter_tiles` (which reads
large regions on ``workers`` threads and slices them into tiles) or, with ``processes``,
a :class:`~pathview.slide.tile_processes.ProcessTileReader` (the same reads on worker
processes, each with its own GIL, handing tiles over in shared memory), and copies tiles into
fixed-size uint8 buffers; the consumer takes full buffers from a bounded queue and gives
each back when the device no longer needs it. On CUDA the buffers are pinned so the
host-to-device copy is asynchronous, and a buffer is reused only after the CUDA event
recorded behind its last use has completed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..slide import Slide, TileGrid
from ..slide.tile_processes import ProcessTileReader
from ..slide.tile_reader import TileBatch, iter_tiles

_POLL_S = 0.1
_CLOSE_S = 10.0


@dataclass
class HostBatch:
    """A full (or final) batch: grid ``indices`` and ``pixels`` = the first ``n`` rows of ``buffer``;
    ``damaged`` flags the tiles that could not be decoded (None when all could)."""

    indices: np.ndarray
    buffer: torch.Tensor
    n: int
    damaged: np.ndarray | None = None

    @property
    def pixels(self) -> torch.Tensor:
        return self.buffer[:self.n]


def _mask(damaged: np.ndarray) -> np.ndarray | None:
    return damaged.copy() if damaged.any() else None


class _End:
    pass


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class TilePrefetcher:
    """Iterate :class:`HostBatch` es of ``batch_size`` tiles of ``grid``, read ahead on threads."""

    def __init__(self, slide: Slide, grid: TileGrid, batch_size: int, *, workers: int = 4, block_tiles: int = 8,
                 depth: int = 3, pin: bool = False, processes: bool = False,
                 cancel: threading.Event | None = None) -> None:
        self.slide, self.grid = slide, grid
        self.cancel = cancel  # set: iteration ends within _POLL_S, even while a read hangs
        self.batch_size = batch_size
        self.workers, self.block_tiles = workers, block_tiles
        self.processes = processes
        self._ready: queue.Queue = queue.Queue(maxsize=depth)
        self._free: queue.Queue = queue.Queue()
        shape = (batch_size, grid.patch_size, grid.patch_size, 3)
        for _ in range(depth + 2):
            self._free.put((torch.empty(shape, dtype=torch.uint8, pin_memory=pin), None))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tile-prefetch", daemon=True)
        self._thread.start()

    # -- producer -----------------------------------------------------------------------------
    def _take(self) -> torch.Tensor | None:
        while not self._stop.is_set():
            try:
                buf, event = self._free.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if event is not None:
                event.synchronize()
            return buf
        return None

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._ready.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            if self.processes:
                with ProcessTileReader(self.slide.path, self.grid, self.workers, self.block_tiles,
                                       stop=self._stop, bridge=self.slide) as reader:
                    self._pack(iter(reader))
            else:
                self._pack(iter_tiles(self.slide, self.grid, workers=self.workers, block_tiles=self.block_tiles))
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failed(exc))

    def _pack(self, tiles: Iterator[TileBatch]) -> None:
        """Copy ``tiles`` into batch buffers and queue each full one (then the last, then the end)."""
        buf, fill = None, 0
        idx = np.empty(self.batch_size, np.int64)
        damaged = np.zeros(self.batch_size, bool)
        for tb in tiles:
            pos = 0
            while pos < len(tb.indices):
                if buf is None:
                    buf, fill = self._take(), 0
                    if buf is None:
                        return
                k = min(self.batch_size - fill, len(tb.indices) - pos)
                buf[fill:fill + k].numpy()[:] = tb.pixels[pos:pos + k]
                idx[fill:fill + k] = tb.indices[pos:pos + k]
                damaged[fill:fill + k] = False if tb.damaged is None else tb.damaged[pos:pos + k]
                fill, pos = fill + k, pos + k
                if fill == self.batch_size:
                    if not self._put(HostBatch(idx.copy(), buf, fill, _mask(damaged))):
                        return
                    buf = None
            if self._stop.is_set():
                return
        if buf is not None and fill:
            self._put(HostBatch(idx[:fill].copy(), buf, fill, _mask(damaged[:fill])))
        self._put(_End())

    # -- consumer -----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[HostBatch]:
        while True:
            try:
                item = self._ready.get(timeout=_POLL_S)
            except queue.Empty:
                if self.cancel is not None and self.cancel.is_set():
                    return
                continue
            if isinstance(item, _End):
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item

    def release(self, batch: HostBatch, event: torch.cuda.Event | None = None) -> None:
        """Give ``batch``'s buffer back; it is refilled once ``event`` (if any) has completed."""
        self._free.put((batch.buffer, event))

    def close(self) -> None:
        """Stop reading and wait for the reader thread: reader processes are stopped (killed when they
        hang); a read hanging in a reader *thread* cannot be interrupted, so after ``_CLOSE_S`` that
        (daemon) thread is left to finish on its own."""
        self._stop.set()
        deadline = time.monotonic() + _CLOSE_S
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                while True:
                    self._ready.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=_POLL_S)

    def __enter__(self) -> TilePrefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
