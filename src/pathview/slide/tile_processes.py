"""Read a tile grid on worker processes that each open the slide and decode into shared memory.

Why: a GPU encoder takes 2,000-3,000 tiles/s, and reader threads in one process stall
near 2,000 tiles/s however many cores there are (measured: 2 threads here and 14 on a
16-core GPU machine both gave about 2,000), because the per-block Python work runs
under one GIL. Processes have a GIL each. Each worker reads whole blocks exactly as
:func:`~.tile_reader.read_block` does and writes the tiles into a slot of one shared,
memory-mapped buffer; only slot numbers and block coordinates cross the pipes.

Workers are plain ``python -m pathview.slide.tile_worker`` processes rather than
``multiprocessing`` children, which would first re-import the caller's main module
(torch and all, seconds per worker); they import only the slide core. Even so a dozen of
them take about a second to start (measured on a 16-core GPU machine: 1.7 s lost on a
19,000-tile slide), so given the caller's open slide a few threads of this process read
the first blocks until the processes are ready, and the first tiles come as fast as
with reader threads.
"""

from __future__ import annotations

import mmap
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np

from ..errors import PathviewError
from .grid import TileGrid
from .reader import Slide
from .tile_reader import TileBatch, block_groups
from .tile_worker import READY, read_into

_WAIT_S = 0.5
#: How long close() lets busy workers finish their block before it kills them (all together).
_STOP_S = 2.0


class TileReaderDied(RuntimeError):
    """A reader process ended without finishing its block (killed, out of memory, a crash in a decoder)."""


class TileBufferError(PathviewError):
    """No room for the readers' shared tile buffer (in /dev/shm nor in the temporary folder)."""


class _Worker:
    """One reader process and its two pipes: tasks in, results out; ``ready`` once it has opened the slide."""

    ready = False

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

    def alive(self) -> bool:
        return self.proc.poll() is None

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


class _BridgeWorker:
    """A reader thread of this process with the caller's open slide, used while the processes start.

    It speaks the processes' protocol (a result pipe that :func:`wait` watches, the same
    result messages), so the reader treats both alike.
    """

    ready = True

    def __init__(self, index: int, slide: Slide, slots: np.ndarray, init: dict) -> None:
        self.name = f"tile-bridge-{index}"
        self.results, self._out = Pipe(duplex=False)
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.pending = 0
        self._thread = threading.Thread(target=self._serve, args=(slide, slots, init["ps0"], init["size"]),
                                        name=self.name, daemon=True)
        self._thread.start()

    def _serve(self, slide: Slide, slots: np.ndarray, ps0: int, size: int) -> None:
        while (task := self._tasks.get()) is not None:
            try:
                self._out.send(read_into(slide, slots, *task, ps0, size))
            except OSError:  # the reader has closed: nobody wants this block
                return

    def send(self, task: object) -> None:
        self._tasks.put(task)
        self.pending += 1

    def alive(self) -> bool:
        return True  # a thread reports its errors as results; it does not die unnoticed

    def ask_to_stop(self) -> None:
        self._tasks.put(None)

    def end(self, deadline: float) -> None:
        """Wait for the thread until ``deadline``; a read that hangs longer is left to finish on its own."""
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._out.close()
        self.results.close()


class ProcessTileReader:
    """Iterate the grid's tiles in blocks, read by ``workers`` processes, in a deterministic order.

    A yielded batch's ``pixels`` live in the shared buffer and stay valid until the next
    batch is asked for: copy what you keep. Use as a context manager (the workers are
    stopped and the buffer freed on exit). Each worker has at most ``depth`` blocks in hand.
    ``bridge``: the caller's open handle of the same slide; while some process is still
    starting, ``bridge_threads`` threads of this process read blocks with it.
    """

    def __init__(self, path: str | os.PathLike, grid: TileGrid, workers: int = 4, block_tiles: int = 8,
                 depth: int = 2, stop: threading.Event | None = None, bridge: Slide | None = None,
                 bridge_threads: int = 3) -> None:
        self.grid = grid
        self.stop = stop  # set: iteration ends at the next wait, even while a reader hangs
        self.blocks = block_groups(grid, block_tiles)
        self.depth = depth
        nworkers = min(workers, max(1, len(self.blocks)))
        self.shape = (max(2, depth * nworkers), block_tiles * block_tiles, grid.patch_size, grid.patch_size, 3)
        self._file = _shared_file(int(np.prod(self.shape)))
        self._map = mmap.mmap(self._file.fileno(), int(np.prod(self.shape)))
        self.slots = np.frombuffer(self._map, dtype=np.uint8).reshape(self.shape)
        init = {"slide": str(path), "shape": self.shape, "ps0": grid.patch_size_level0, "size": grid.patch_size}
        self._workers: list[_Worker] = []
        self._bridges: list[_BridgeWorker] = []
        try:
            for i in range(nworkers):
                self._workers.append(_Worker(i, init, self._file.fileno()))
            if bridge is not None:
                self._bridges = [_BridgeWorker(i, bridge, self.slots, init) for i in range(bridge_threads)]
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[TileBatch]:
        free = deque(range(self.shape[0]))
        submitted: deque[tuple[int, np.ndarray]] = deque()  # (slot, indices) in block order
        ready: dict[int, tuple[np.ndarray | None, BaseException | None]] = {}
        given = 0  # blocks handed out so far
        consumed: int | None = None
        while True:
            if consumed is not None:  # the consumer has moved on: its slot is free again
                free.append(consumed)
                consumed = None
            while free and given < len(self.blocks) and (worker := self._available()):
                slot, indices = free.popleft(), self.blocks[given]
                worker.send((slot, self.grid.coords[indices]))
                submitted.append((slot, indices))
                given += 1
            if not submitted and given == len(self.blocks):
                return
            if not submitted or submitted[0][0] not in ready:  # wait: for the next block, or for a worker
                if self.stop is not None and self.stop.is_set():
                    return
                ready.update((s, (damaged, error)) for s, damaged, error in self._collect())
                continue  # a worker may have become ready or free: hand out more blocks first
            slot, indices = submitted[0]
            damaged, error = ready.pop(slot)
            submitted.popleft()
            if error is not None:
                raise error
            consumed = slot
            yield TileBatch(indices, self.slots[slot, :len(indices)], damaged)

    def _available(self) -> _Worker | _BridgeWorker | None:
        """Return the worker to give the next block: a ready process with room, else, while some process
        is still starting, a bridge thread with room; None when all are full."""
        ready = [w for w in self._workers if w.ready and w.pending < self.depth]
        if not ready and not all(w.ready for w in self._workers):
            ready = [w for w in self._bridges if w.pending < self.depth]
        return min(ready, key=lambda w: w.pending, default=None)

    def _collect(self) -> list[tuple[int, np.ndarray | None, BaseException | None]]:
        """Wait for results from any worker (and for starting processes to say they are ready); a worker
        that died with work pending or before it was ready is an error."""
        watched = {w.results: w for w in (*self._workers, *self._bridges) if w.pending or not w.ready}
        got = []
        for conn in wait(list(watched), timeout=_WAIT_S):
            worker = watched[conn]
            try:
                message = conn.recv()
            except (EOFError, OSError):
                raise worker.died() from None
            if message == READY:
                worker.ready = True
                continue
            worker.pending -= 1
            got.append(message)
        if not got:
            for worker in watched.values():
                if not worker.alive():
                    raise worker.died()
        return got

    def close(self) -> None:
        """Stop the workers (busy ones may finish their block for a moment; then they are killed) and free
        the buffer."""
        workers = [*self._workers, *self._bridges]
        for worker in workers:
            worker.ask_to_stop()
        deadline = time.monotonic() + _STOP_S
        for worker in workers:
            worker.end(deadline)
        self._workers, self._bridges = [], []
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
