"""Background tile loading for the viewer: newest request first, stale requests dropped."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from ..tiles import TileSource
from ..viewport import TileKey


class TileLoader(QObject):
    """Decodes display tiles on worker threads; ``tile_ready`` fires on the GUI thread.

    Each view change replaces the whole request list (QuPath's habit): tiles that left
    the view are never decoded, and the newest view's tiles go first.
    """

    tile_ready = Signal(object)

    def __init__(self, source: TileSource, workers: int = 4) -> None:
        super().__init__()
        self.source = source
        self._pending: list[TileKey] = []
        self._in_flight: set[TileKey] = set()
        self._cond = threading.Condition()
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name=f"tile-loader-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def request(self, keys: list[TileKey]) -> None:
        """Replace the queue with ``keys`` (in priority order), skipping cached ones."""
        with self._cond:
            self._pending = [k for k in keys if k not in self._in_flight and self.source.cached(k) is None]
            self._cond.notify_all()

    def idle(self) -> bool:
        with self._cond:
            return not self._pending and not self._in_flight

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                key = self._pending.pop(0)
                self._in_flight.add(key)
            try:
                self.source.load(key)
            finally:
                with self._cond:
                    self._in_flight.discard(key)
            if not self._stopped:
                self.tile_ready.emit(key)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._pending = []
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=5)
