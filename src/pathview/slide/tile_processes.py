"""Read a tile grid on worker processes that each open the slide and decode into shared memory.

Why: a GPU encoder takes 2,000-3,000 tiles/s, and reader threads in one process stall
near 2,000 tiles/s however many cores there are (measured: 2 threads here and 14 on a
16-core GPU machine both gave about 2,000), because the per-block Python work runs
under one GIL. Processes have a GIL each. Each worker reads whole blocks exactly as
:func:`~.tile_reader.read_block` does and writes the tiles into a slot of one shared,
memory-mapped buffer; only slot numbers and block coordinates cross the pipes.

Workers are plain ``python -m pathview.slide.tile_worker`` processes rather than
``multiprocessing`` children, which would first re-import the caller's main module
(torch and all, seconds per worker); they import only the slide core.
"""

from __future__ import annotations

import mmap
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np

from ..errors import PathviewError
from .grid import TileGrid
from .tile_reader import TileBatch, block_groups

_WAIT_S = 0.5
#: How long close() lets busy workers finish their block before it kills them (all together).
_STOP_S = 2.0


class TileReaderDied(RuntimeError):
    """A reader process ended without finishing its block (killed, out of memory, a crash in a decoder)."""


class TileBufferError(PathviewError):
    """No room for the readers' shared tile buffer (in /dev/shm nor in the temporary folder)."""


class _Worker:
    """One reader process and its two pipes: tasks in, results out."""

    def __init__(self, index: int, init: dict, buffer_fd: int) -> None:
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        self.name = f"tile-reader-{index}"
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "pathview.slide.tile_worker", str(task_r),
                                          str(result_w), str(buffer_fd)],
                                         pass_fds=(task_r, result_w, buffer_fd), stdin=subprocess.DEVNULL)
        except BaseException:
            for fd in (task_w, result_r):
                os.close(fd)
            raise
        finally:
            os.close(task_r)
            os.close(result_w)
        self.tasks = Connection(task_w, readable=False)
        self.results = Connection(result_r, writable=False)
        self.pending = 0
        self.tasks.send(init)

    def send(self, task: object) -> None:
        try:
            self.tasks.send(task)
        except OSError:  # the pipe is broken: the process is gone
            raise self.died() from None
        self.pending += 1

    def died(self) -> TileReaderDied:
        code = self.proc.wait()
        return TileReaderDied(f"tile reader process {self.name} died (exit code {code}) while reading the slide")

    def ask_to_stop(self) -> None:
        try:
            self.tasks.send(None)
        except OSError:  # already gone
            pass

    def end(self, deadline: float) -> None:
        """Wait for the process until ``deadline`` (time.monotonic), then kill it: its block is not wanted."""
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.tasks.close()
        self.results.close()


class ProcessTileReader:
    """Iterate the grid's tiles in blocks, read by ``workers`` processes, in a deterministic order.

    A yielded batch's ``pixels`` live in the shared buffer and stay valid until the next
    batch is asked for: copy what you keep. Use as a context manager (the workers are
    stopped and the buffer freed on exit).
    """

    def __init__(self, path: str | os.PathLike, grid: TileGrid, workers: int = 4, block_tiles: int = 8,
                 depth: int = 2, stop: threading.Event | None = None) -> None:
        self.grid = grid
        self.stop = stop  # set: iteration ends at the next wait, even while a reader hangs
        self.blocks = block_groups(grid, block_tiles)
        nworkers = min(workers, max(1, len(self.blocks)))
        self.shape = (max(2, depth * nworkers), block_tiles * block_tiles, grid.patch_size, grid.patch_size, 3)
        self._file = _shared_file(int(np.prod(self.shape)))
        self._map = mmap.mmap(self._file.fileno(), int(np.prod(self.shape)))
        self.slots = np.frombuffer(self._map, dtype=np.uint8).reshape(self.shape)
        init = {"slide": str(path), "shape": self.shape, "ps0": grid.patch_size_level0, "size": grid.patch_size}
        self._workers: list[_Worker] = []
        try:
            for i in range(nworkers):
                self._workers.append(_Worker(i, init, self._file.fileno()))
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[TileBatch]:
        free = deque(range(self.shape[0]))
        submitted: deque[tuple[int, np.ndarray]] = deque()  # (slot, indices) in block order
        ready: dict[int, tuple[np.ndarray | None, BaseException | None]] = {}
        blocks = iter(self.blocks)
        consumed: int | None = None
        while True:
            if consumed is not None:  # the consumer has moved on: its slot is free again
                free.append(consumed)
                consumed = None
            while free and (indices := next(blocks, None)) is not None:
                slot = free.popleft()
                min(self._workers, key=lambda w: w.pending).send((slot, self.grid.coords[indices]))
                submitted.append((slot, indices))
            if not submitted:
                return
            slot, indices = submitted[0]
            while slot not in ready:
                if self.stop is not None and self.stop.is_set():
                    return
                ready.update((s, (damaged, error)) for s, damaged, error in self._collect())
            damaged, error = ready.pop(slot)
            submitted.popleft()
            if error is not None:
                raise error
            consumed = slot
            yield TileBatch(indices, self.slots[slot, :len(indices)], damaged)

    def _collect(self) -> list[tuple[int, np.ndarray | None, BaseException | None]]:
        """Wait for results from any worker; a worker that died with work pending is an error."""
        busy = {w.results: w for w in self._workers if w.pending}
        got = []
        for conn in wait(list(busy), timeout=_WAIT_S):
            worker = busy[conn]
            try:
                got.append(conn.recv())
            except (EOFError, OSError):
                raise worker.died() from None
            worker.pending -= 1
        if not got:
            for worker in busy.values():
                if worker.proc.poll() is not None:
                    raise worker.died()
        return got

    def close(self) -> None:
        """Stop the workers (busy ones may finish their block for a moment; then they are killed) and free
        the buffer."""
        for worker in self._workers:
            worker.ask_to_stop()
        deadline = time.monotonic() + _STOP_S
        for worker in self._workers:
            worker.end(deadline)
        self._workers = []
        self.slots = None
        try:
            self._map.close()
        except BufferError:  # a caller still holds a batch's pixels: the map goes when they do
            pass
        self._file.close()

    def __enter__(self) -> ProcessTileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shared_file(size: int):
    """Return an open temporary file of ``size`` bytes, nameless from the start (the workers inherit its
    descriptor, so no crash of any process can leave it behind), in memory-backed /dev/shm when it has
    room, else in the temporary folder (the page cache keeps it in memory as long as memory allows).

    The space is reserved up front: a sparse file on a full /dev/shm (64 MB in a default Docker
    container) would kill the workers with SIGBUS at their first write.
    """
    folders = [d for d in ("/dev/shm",) if Path(d).is_dir() and os.access(d, os.W_OK)] + [tempfile.gettempdir()]
    for folder in folders:
        f = tempfile.TemporaryFile(prefix="pathview-tiles-", dir=folder)
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(f.fileno(), 0, size)
            else:  # no way to reserve the space (macOS): a sparse file
                f.truncate(size)
            return f
        except OSError:
            f.close()
    raise TileBufferError(f"no room for the {size / 2**20:.0f} MB tile buffer of the reader processes in "
                          f"{' or '.join(folders)}: free some space, or use --readers threads")
