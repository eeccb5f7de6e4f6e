"""A tile reader process (see :mod:`.tile_processes`): reads blocks of tiles into a shared buffer.

Run as ``python -m pathview.slide.tile_worker TASK_FD RESULT_FD BUFFER_FD`` by
:class:`~.tile_processes.ProcessTileReader`. The first message on the task pipe names
the slide and the buffer's shape; the worker answers :data:`READY` once the slide is open. Each
later task is ``(slot, coords)``, answered on the result pipe with ``(slot, damaged, None)``
(``damaged``: the mask of tiles that could not be decoded, or None) or ``(slot, None, error)``;
``None`` ends the process.
"""

from __future__ import annotations

import mmap
import pickle
import sys
from multiprocessing.connection import Connection

import numpy as np

from .reader import Slide
from .tile_reader import read_block_at


#: Sent once the slide is open: the parent gives a worker blocks only from then on.
READY = "ready"


def serve(tasks: Connection, results: Connection, buffer_fd: int) -> None:
    init = tasks.recv()
    buffer = mmap.mmap(buffer_fd, int(np.prod(init["shape"])))
    slots = np.frombuffer(buffer, dtype=np.uint8).reshape(init["shape"])
    with Slide(init["slide"]) as slide:
        results.send(READY)
        while (task := tasks.recv()) is not None:
            results.send(read_into(slide, slots, *task, init["ps0"], init["size"]))


def read_into(slide: Slide, slots: np.ndarray, slot: int, coords: np.ndarray, ps0: int,
              size: int) -> tuple[int, np.ndarray | None, Exception | None]:
    """Read the block at ``coords`` into ``slots[slot]``; return the result message for the parent."""
    try:
        pixels, damaged = read_block_at(slide, coords, ps0, size)
        slots[slot, :len(pixels)] = pixels
        return slot, damaged, None
    except Exception as exc:  # noqa: BLE001 - raised again in the parent, where it is handled
        return slot, None, picklable(exc)


def picklable(exc: Exception) -> Exception:
    """Return ``exc`` if it survives pickling (the parent must get it), else a RuntimeError saying the same."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any failure to round-trip means: send its text
        return RuntimeError(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    try:
        serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False),
              int(sys.argv[3]))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):  # the parent went away or was interrupted
        pass
