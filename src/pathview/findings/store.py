"""The findings store: every slide's annotations in one SQLite file (WAL) in the workspace.

Annotations are filed by the slide's quickhash, so they follow a renamed or moved
slide, and never beside the slide. Every edit is its own committed transaction
(synchronous=FULL: killing the process, or the power, loses no finished edit); a bulk
add is one transaction, all or nothing. An R*Tree answers "what lies in this box"
fast: each slide's bounding boxes are held in a numpy array (100,000 boxes test in about
a millisecond), kept in step with this connection's edits and reloaded when another
process commits. One connection, guarded by a lock, serves every thread.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from ..workspace import Workspace
from .box_index import BoxIndex
from .errors import AnnotationNotFoundError, FindingsError
from .model import DEFAULT_CLASSES, RGB, Annotation, AnnotationClass

_SCHEMA = """
CREATE TABLE IF NOT EXISTS annotations (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    slide TEXT NOT NULL,
    kind TEXT NOT NULL,
    class_name TEXT,
    color TEXT,
    name TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    locked INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL,
    object_type TEXT NOT NULL,
    measurements TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    modified REAL NOT NULL,
    x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
    wkb BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_slide ON annotations(slide, class_name);
CREATE TABLE IF NOT EXISTS classes (
    position INTEGER NOT NULL,
    name TEXT PRIMARY KEY,
    color TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    rowid INTEGER PRIMARY KEY,
    slide TEXT NOT NULL,
    annotation_id TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    image_png BLOB
);
CREATE INDEX IF NOT EXISTS answers_annotation ON answers(slide, annotation_id);
"""
_COLUMNS = ("id", "slide", "kind", "class_name", "color", "name", "note", "locked", "source",
            "object_type", "measurements", "extra", "created", "modified", "x0", "y0", "x1", "y1", "wkb")
_SELECT = "SELECT a.id, a.kind, a.class_name, a.color, a.name, a.note, a.locked, a.source, " \
          "a.object_type, a.measurements, a.extra, a.created, a.modified, a.wkb FROM annotations a"


@dataclass(frozen=True)
class AssistantAnswer:
    """An assistant's answer about an annotation's region, kept with it for exports and the report."""

    question: str
    answer: str
    model: str
    created: float = field(default_factory=time.time)
    image_png: bytes | None = None  # the region the model saw, as PNG bytes


@dataclass(frozen=True)
class StoreEvent:
    """What changed: ``action`` is added, updated, removed or classes; ``ids`` the annotations."""

    action: str
    quickhash: str | None
    ids: tuple[str, ...] = ()


def color_to_hex(color: RGB | None) -> str | None:
    return None if color is None else "#{:02x}{:02x}{:02x}".format(*color)


def hex_to_color(text: str | None) -> RGB | None:
    if not text:
        return None
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


_strict_json = json.JSONEncoder(allow_nan=False, ensure_ascii=False).encode  # one encoder, not one per call


def _json_safe(values: dict) -> str:
    """JSON text of ``values`` with NaN/inf measurements kept as the strings QuPath writes."""
    if not values:
        return "{}"
    try:
        return _strict_json(values)
    except ValueError:  # NaN or infinity somewhere
        pass
    return json.dumps({k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()})


def _measurements_from_json(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in json.loads(text).items()} if text != "{}" else {}


class FindingsStore:
    """Annotations, classes and assistant answers of every slide, keyed by slide quickhash."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)  # idempotent; executescript commits on its own
            with self._transaction():
                if self._conn.execute("SELECT COUNT(*) FROM classes").fetchone()[0] == 0:
                    self._conn.executemany("INSERT INTO classes VALUES (?, ?, ?)",
                                           [(i, c.name, color_to_hex(c.color)) for i, c in enumerate(DEFAULT_CLASSES)])
        except sqlite3.DatabaseError as exc:
            raise FindingsError(f"cannot open the findings store '{self.path}': {exc}") from None
        self._lock = threading.RLock()
        self._boxes = BoxIndex(self._conn)
        self._listeners: list[Callable[[StoreEvent], None]] = []

    @classmethod
    def open(cls, workspace: Workspace | str | Path | None = None) -> FindingsStore:
        """Open the store of ``workspace`` (a Workspace, a folder, or None for the default one)."""
        ws = workspace if isinstance(workspace, Workspace) else Workspace.at(workspace)
        return cls(ws.findings_db)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> FindingsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- change notification ------------------------------------------------------------------
    def subscribe(self, listener: Callable[[StoreEvent], None]) -> Callable[[], None]:
        """Call ``listener(event)`` after every committed change (on the editing thread); return an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, action: str, quickhash: str | None, ids: Sequence[str] = ()) -> None:
        event = StoreEvent(action, quickhash, tuple(ids))
        for listener in list(self._listeners):
            listener(event)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction; rolled back whole on any error (a failed COMMIT included).

        A busy or failing database (another process holding the write lock past the timeout,
        a full disk) becomes a :class:`FindingsError` the viewer shows, not a bare sqlite3 error.
        """
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise FindingsError(f"the findings store '{self.path}' cannot be written now ({exc}); nothing was "
                                "changed - another pathview may be saving a large import, try again") from None

    # -- annotations --------------------------------------------------------------------------
    def add(self, quickhash: str, annotation: Annotation) -> Annotation:
        """Save a new annotation (its own transaction) and return it."""
        self.add_many(quickhash, [annotation])
        return annotation

    def add_many(self, quickhash: str, annotations: Iterable[Annotation]) -> int:
        """Save many annotations in ONE transaction (all or none); return how many."""
        anns = list(annotations)
        if not anns:
            return 0
        geoms = np.array([a.geometry for a in anns], dtype=object)
        wkbs = shapely.to_wkb(geoms)
        boxes = shapely.bounds(geoms)
        rows = [(a.id, quickhash, a.kind, a.class_name, color_to_hex(a.color), a.name, a.note, int(a.locked),
                 a.source, a.object_type, _json_safe(a.measurements), _json_safe(a.extra), a.created, a.modified,
                 *b, w) for a, b, w in zip(anns, boxes.tolist(), wkbs)]
        with self._lock:
            try:
                with self._transaction() as c:
                    start = c.execute("SELECT COALESCE(MAX(rid), 0) FROM annotations").fetchone()[0] + 1
                    c.executemany(f"INSERT INTO annotations (rid, {', '.join(_COLUMNS)}) "
                                  f"VALUES (?{', ?' * len(_COLUMNS)})",
                                  [(start + i, *row) for i, row in enumerate(rows)])
            except sqlite3.IntegrityError as exc:
                raise FindingsError(f"an annotation with the same id is already stored ({exc})") from None
            self._boxes.added(quickhash, np.arange(start, start + len(anns)), [a.id for a in anns], boxes)
        self._emit("added", quickhash, [a.id for a in anns])
        return len(anns)

    def update(self, quickhash: str, annotation: Annotation) -> Annotation:
        """Replace the stored annotation with the same id (its own transaction); return it."""
        self.update_many(quickhash, [annotation])
        return annotation

    def update_many(self, quickhash: str, annotations: Sequence[Annotation]) -> list[Annotation]:
        """Replace stored annotations with the same ids in ONE transaction (all or none); return the old ones."""
        before, rids = [], []
        with self._lock:
            with self._transaction() as c:
                for a in annotations:
                    before.append(self._get(quickhash, a.id))
                    rid = c.execute("SELECT rid FROM annotations WHERE id = ?", (a.id,)).fetchone()[0]
                    c.execute("UPDATE annotations SET kind=?, class_name=?, color=?, name=?, note=?, locked=?, "
                              "source=?, object_type=?, measurements=?, extra=?, created=?, modified=?, x0=?, y0=?, "
                              "x1=?, y1=?, wkb=? WHERE rid=?",
                              (a.kind, a.class_name, color_to_hex(a.color), a.name, a.note, int(a.locked), a.source,
                               a.object_type, _json_safe(a.measurements), _json_safe(a.extra), a.created, a.modified,
                               *a.geometry.bounds, shapely.to_wkb(a.geometry), rid))
                    rids.append(rid)
            for a, rid in zip(annotations, rids):
                self._boxes.updated(quickhash, rid, a.geometry.bounds)
        self._emit("updated", quickhash, [a.id for a in annotations])
        return before

    def modified_times(self, quickhash: str, annotation_ids: Sequence[str]) -> dict[str, float]:
        """Return the ``modified`` time of each of these annotations the slide holds (absent ones left out)."""
        with self._lock:
            rows = self._conn.execute("SELECT id, modified FROM annotations WHERE slide = ? AND id IN "
                                      "(SELECT value FROM json_each(?))", (quickhash, json.dumps(list(annotation_ids))))
            return dict(rows.fetchall())

    def remove(self, quickhash: str, annotation_id: str) -> Annotation:
        """Delete one annotation (its own transaction); return what was deleted (for undo)."""
        return self.remove_many(quickhash, [annotation_id])[0]

    def remove_many(self, quickhash: str, annotation_ids: Sequence[str]) -> list[Annotation]:
        """Delete annotations in one transaction (all or none); return them in the order given.

        Assistant answers stay filed under the id, so an undo that restores the annotation
        restores its answers too.
        """
        ids = json.dumps(list(annotation_ids))  # one statement for all: undoing a 100,000-object import is one step
        with self._lock:
            with self._transaction() as c:
                found = {a.id: a for a in _from_rows(c.execute(
                    f"{_SELECT} WHERE a.slide = ? AND a.id IN (SELECT value FROM json_each(?))", (quickhash, ids)
                ).fetchall())}
                missing = [aid for aid in annotation_ids if aid not in found]
                if missing:
                    raise AnnotationNotFoundError(missing[0])
                removed = [found[aid] for aid in annotation_ids]
                rids = [r[0] for r in c.execute("DELETE FROM annotations WHERE slide = ? AND id IN "
                                                "(SELECT value FROM json_each(?)) RETURNING rid", (quickhash, ids))]
            self._boxes.removed(quickhash, rids)
        self._emit("removed", quickhash, list(annotation_ids))
        return removed

    def clear(self, quickhash: str) -> int:
        """Delete every annotation of a slide in one transaction; return how many."""
        with self._lock:
            with self._transaction() as c:
                ids = [r[0] for r in c.execute("DELETE FROM annotations WHERE slide = ? RETURNING id", (quickhash,))]
            self._boxes.forget(quickhash)
        self._emit("removed", quickhash, ids)
        return len(ids)

    def get(self, quickhash: str, annotation_id: str) -> Annotation:
        """Return one annotation, or raise :class:`AnnotationNotFoundError`."""
        with self._lock:
            return self._get(quickhash, annotation_id)

    def resolve_id(self, quickhash: str, id_or_prefix: str) -> str:
        """Return the full id of the one annotation whose id is or starts with ``id_or_prefix``."""
        with self._lock:
            rows = self._conn.execute("SELECT id FROM annotations WHERE slide = ? AND substr(id, 1, ?) = ?",
                                      (quickhash, len(id_or_prefix), id_or_prefix)).fetchall()
        if len(rows) != 1:
            if len(rows) > 1:
                raise FindingsError(f"{len(rows)} annotations have ids starting with {id_or_prefix}: give more of it")
            raise AnnotationNotFoundError(id_or_prefix)
        return rows[0][0]

    def _get(self, quickhash: str, annotation_id: str) -> Annotation:
        rows = self._conn.execute(f"{_SELECT} WHERE a.id = ? AND a.slide = ?", (annotation_id, quickhash)).fetchall()
        if not rows:
            raise AnnotationNotFoundError(annotation_id)
        return _from_rows(rows)[0]

    def annotations(self, quickhash: str, class_name: str | None = None) -> list[Annotation]:
        """Return a slide's annotations in the order they were added, optionally of one class."""
        sql, args = f"{_SELECT} WHERE a.slide = ?", [quickhash]
        if class_name is not None:
            sql, args = sql + " AND a.class_name = ?", args + [class_name]
        with self._lock:
            return _from_rows(self._conn.execute(sql + " ORDER BY a.rid", args).fetchall())

    def count(self, quickhash: str) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM annotations WHERE slide = ?", (quickhash,)).fetchone()[0]

    def ids_in_box(self, quickhash: str, x0: float, y0: float, x1: float, y1: float) -> list[str]:
        """Return the ids of the annotations whose bounding box meets the level-0 box, in added order."""
        with self._lock:
            return self._boxes.query(quickhash, x0, y0, x1, y1)[1]

    def in_box(self, quickhash: str, x0: float, y0: float, x1: float, y1: float) -> list[Annotation]:
        """Return the annotations whose bounding box meets the level-0 box (x0, y0)-(x1, y1)."""
        with self._lock:
            rids = self._boxes.query(quickhash, x0, y0, x1, y1)[0]
            rows = []
            for i in range(0, len(rids), 50_000):
                rows += self._conn.execute(f"{_SELECT} WHERE a.rid IN (SELECT value FROM json_each(?)) ORDER BY a.rid",
                                           (json.dumps(rids[i:i + 50_000]),)).fetchall()
        return _from_rows(rows)

    def slides(self) -> list[tuple[str, int]]:
        """Return (quickhash, annotation count) of every slide with annotations."""
        with self._lock:
            return [tuple(r) for r in self._conn.execute(
                "SELECT slide, COUNT(*) FROM annotations GROUP BY slide ORDER BY slide")]

    # -- classes ------------------------------------------------------------------------------
    def classes(self) -> list[AnnotationClass]:
        """Return the class list in display order."""
        with self._lock:
            rows = self._conn.execute("SELECT name, color FROM classes ORDER BY position, name").fetchall()
        return [AnnotationClass(n, hex_to_color(c)) for n, c in rows]

    def class_colors(self) -> dict[str, RGB]:
        return {c.name: c.color for c in self.classes()}

    def set_class(self, cls: AnnotationClass) -> None:
        """Add a class at the end of the list, or change the colour of an existing one."""
        with self._lock, self._transaction() as c:
            pos = c.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM classes").fetchone()[0]
            c.execute("INSERT INTO classes VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET color = excluded.color",
                      (pos, cls.name, color_to_hex(cls.color)))
        self._emit("classes", None)

    def rename_class(self, old: str, new: str) -> None:
        """Rename a class, and every annotation of it on every slide, in one transaction."""
        with self._lock, self._transaction() as c:
            if c.execute("SELECT 1 FROM classes WHERE name = ?", (new,)).fetchone():
                raise FindingsError(f"a class named '{new}' already exists")
            if c.execute("UPDATE classes SET name = ? WHERE name = ?", (new, old)).rowcount == 0:
                raise FindingsError(f"no class named '{old}'")
            c.execute("UPDATE annotations SET class_name = ? WHERE class_name = ?", (new, old))
        self._emit("classes", None)

    def class_in_use(self, name: str) -> bool:
        """Return whether an annotation of any slide has class ``name``."""
        with self._lock:
            return self._conn.execute("SELECT 1 FROM annotations WHERE class_name = ? LIMIT 1",
                                      (name,)).fetchone() is not None

    def remove_class(self, name: str) -> None:
        """Remove a class from the list; its annotations keep the name (shown in the unclassified colour)."""
        with self._lock, self._transaction() as c:
            c.execute("DELETE FROM classes WHERE name = ?", (name,))
        self._emit("classes", None)

    # -- assistant answers --------------------------------------------------------------------
    def add_answer(self, quickhash: str, annotation_id: str, answer: AssistantAnswer) -> AssistantAnswer:
        """File an assistant answer under an annotation of this slide (its own transaction)."""
        with self._lock, self._transaction() as c:
            if not c.execute("SELECT 1 FROM annotations WHERE id = ? AND slide = ?",
                             (annotation_id, quickhash)).fetchone():
                raise AnnotationNotFoundError(annotation_id)
            c.execute("INSERT INTO answers (slide, annotation_id, question, answer, model, created, image_png) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)", (quickhash, annotation_id, answer.question, answer.answer,
                                                       answer.model, answer.created, answer.image_png))
        self._emit("updated", quickhash, [annotation_id])
        return answer

    def answers(self, quickhash: str, annotation_id: str) -> list[AssistantAnswer]:
        """Return the answers filed under one annotation, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT question, answer, model, created, image_png FROM answers "
                "WHERE slide = ? AND annotation_id = ? ORDER BY rowid", (quickhash, annotation_id)).fetchall()
        return [AssistantAnswer(*r) for r in rows]

    def all_answers(self, quickhash: str) -> dict[str, list[AssistantAnswer]]:
        """Return every stored annotation's answers, by annotation id (for exports and the report)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT w.annotation_id, w.question, w.answer, w.model, w.created, w.image_png FROM answers w "
                "JOIN annotations a ON a.id = w.annotation_id AND a.slide = w.slide "
                "WHERE w.slide = ? ORDER BY w.rowid", (quickhash,)).fetchall()
        out: dict[str, list[AssistantAnswer]] = {}
        for aid, *rest in rows:
            out.setdefault(aid, []).append(AssistantAnswer(*rest))
        return out


def _from_rows(rows: list[tuple]) -> list[Annotation]:
    """Build annotations from SELECT rows, decoding all geometries in one vectorised call."""
    if not rows:
        return []
    geoms = shapely.from_wkb([r[13] for r in rows])
    return [
        Annotation.trusted(dict(
            geometry=g, kind=r[1], class_name=r[2], color=hex_to_color(r[3]), name=r[4], note=r[5],
            locked=bool(r[6]), source=r[7], object_type=r[8], measurements=_measurements_from_json(r[9]),
            extra=json.loads(r[10]) if r[10] != "{}" else {}, id=r[0], created=r[11], modified=r[12]))
        for r, g in zip(rows, geoms)
    ]

