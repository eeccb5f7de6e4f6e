"""Each slide's annotation bounding boxes in numpy arrays: "what lies in this box" without SQL.

100,000 boxes are tested in about a millisecond, so the viewer may ask on every frame.
"""

from __future__ import annotations

import sqlite3

import numpy as np


class BoxIndex:
    """Each slide's annotation bounding boxes as numpy arrays, for box queries without SQL.

    Kept in step with this connection's edits; reloaded when another connection has
    committed (SQLite's ``data_version`` changes only for other connections' commits).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._slides: dict[str, tuple[np.ndarray, list[str], np.ndarray]] = {}  # rids (sorted), ids, boxes
        self._version = self._data_version()

    def _data_version(self) -> int:
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def _load(self, quickhash: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        version = self._data_version()
        if version != self._version:
            self._slides.clear()
            self._version = version
        if quickhash not in self._slides:
            rows = self._conn.execute("SELECT rid, id, x0, y0, x1, y1 FROM annotations WHERE slide = ? ORDER BY rid",
                                      (quickhash,)).fetchall()
            rids = np.array([r[0] for r in rows], dtype=np.int64)
            boxes = np.array([r[2:] for r in rows], dtype=np.float64).reshape(-1, 4)
            self._slides[quickhash] = (rids, [r[1] for r in rows], boxes)
        return self._slides[quickhash]

    def query(self, quickhash: str, x0: float, y0: float, x1: float, y1: float) -> tuple[list[int], list[str]]:
        rids, ids, boxes = self._load(quickhash)
        hit = np.flatnonzero((boxes[:, 2] >= x0) & (boxes[:, 0] <= x1) & (boxes[:, 3] >= y0) & (boxes[:, 1] <= y1))
        return rids[hit].tolist(), [ids[i] for i in hit]

    def added(self, quickhash: str, rids: np.ndarray, ids: list[str], boxes: np.ndarray) -> None:
        if quickhash in self._slides:
            old_rids, old_ids, old_boxes = self._slides[quickhash]
            self._slides[quickhash] = (np.concatenate([old_rids, rids]), old_ids + ids, np.vstack([old_boxes, boxes]))

    def updated(self, quickhash: str, rid: int, box: tuple[float, float, float, float]) -> None:
        if quickhash in self._slides:
            rids, _, boxes = self._slides[quickhash]
            boxes[np.searchsorted(rids, rid)] = box

    def removed(self, quickhash: str, gone: list[int]) -> None:
        if quickhash in self._slides:
            rids, ids, boxes = self._slides[quickhash]
            keep = ~np.isin(rids, gone)
            self._slides[quickhash] = (rids[keep], [i for i, k in zip(ids, keep) if k], boxes[keep])

    def forget(self, quickhash: str) -> None:
        self._slides.pop(quickhash, None)
