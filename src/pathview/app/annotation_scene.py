"""One slide's annotations in memory, with a spatial index: what lies in a box, what is under the cursor.

The layer asks for the objects of each display tile and the select tool for the object
under a click; both must stay fast with 100,000 nuclei. A shapely STRtree indexes the
bounding boxes; it is immutable, so an edit does not rebuild it: the old entry is
masked out and the new version appended to a short list searched directly (and drawn
on top, where the eye is). After a few thousand edits the index is rebuilt once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import shapely

from ..findings import Annotation
from ..findings.model import UNCLASSIFIED_COLOR

RGB = tuple[int, int, int]
#: Edits kept outside the STRtree before it is rebuilt.
REBUILD_AFTER = 2000
_POINT_TYPES = (0, 4)  # shapely type ids: Point, MultiPoint
_LINE_TYPES = (1, 5)  # LineString, MultiLineString


class AnnotationScene:
    """The annotations of one slide. Iteration is in the order they were added (the panel's order);
    :attr:`items` is the drawing order (indices from :meth:`query` point into it)."""

    def __init__(self, annotations: Iterable[Annotation] = ()) -> None:
        self._by_id: dict[str, Annotation] = {}
        self._built = False
        self._class_colors: dict[str, RGB] = {}
        self.reset(annotations)

    # -- edits ----------------------------------------------------------------------------------
    def reset(self, annotations: Iterable[Annotation]) -> None:
        self._by_id = {a.id: a for a in annotations}
        self._built = False

    def put(self, annotations: Iterable[Annotation]) -> None:
        """Add annotations, or replace the ones with the same id (they keep their place in the list)."""
        annotations = list(annotations)
        for a in annotations:
            self._by_id[a.id] = a
        if self._built:
            self._retire([a.id for a in annotations])
            self._append(annotations)

    def drop(self, ids: Iterable[str]) -> list[Annotation]:
        ids = list(ids)
        gone = [self._by_id.pop(i) for i in ids if i in self._by_id]
        if self._built:
            self._retire(ids)
        return gone

    def _retire(self, ids: list[str]) -> None:
        for aid in ids:
            i = self._index.pop(aid, None)
            if i is not None:
                self.alive[i] = False

    def _append(self, annotations: list[Annotation]) -> None:
        if not annotations:
            return
        start = len(self.items)
        self.items.extend(annotations)
        self._index.update({a.id: start + k for k, a in enumerate(annotations)})
        geoms = np.array([a.geometry for a in annotations], dtype=object)
        types = shapely.get_type_id(geoms)
        self.bounds = np.vstack([self.bounds, shapely.bounds(geoms).reshape(-1, 4)])
        self.is_point = np.concatenate([self.is_point, np.isin(types, _POINT_TYPES)])
        self.is_line = np.concatenate([self.is_line, np.isin(types, _LINE_TYPES)])
        self.alive = np.concatenate([self.alive, np.ones(len(annotations), dtype=bool)])
        self._rgb = np.vstack([self._rgb, self._colors_of(annotations)])
        if len(self.items) - self._indexed > REBUILD_AFTER:
            self._built = False

    # -- reading --------------------------------------------------------------------------------
    def get(self, annotation_id: str) -> Annotation | None:
        return self._by_id.get(annotation_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Annotation]:
        return iter(self._by_id.values())

    def __contains__(self, annotation_id: object) -> bool:
        return annotation_id in self._by_id

    def _build(self) -> None:
        if self._built:
            return
        self.items: list[Annotation] = list(self._by_id.values())
        self._index = {a.id: i for i, a in enumerate(self.items)}
        geoms = np.array([a.geometry for a in self.items], dtype=object)
        types = shapely.get_type_id(geoms) if len(geoms) else np.zeros(0, dtype=int)
        self.bounds = shapely.bounds(geoms).reshape(-1, 4) if len(geoms) else np.zeros((0, 4))
        self.is_point = np.isin(types, _POINT_TYPES)
        self.is_line = np.isin(types, _LINE_TYPES)
        self.alive = np.ones(len(self.items), dtype=bool)
        self._rgb = self._colors_of(self.items)
        self._tree = shapely.STRtree(geoms)
        self._indexed = len(self.items)
        self._built = True

    def query(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        """Return the indices (into :attr:`items`, ascending) of the objects whose box meets the box."""
        self._build()
        if not self._by_id:
            return np.zeros(0, dtype=np.intp)
        hits = self._tree.query(shapely.box(x0, y0, x1, y1)) if self._indexed else np.zeros(0, dtype=np.intp)
        b = self.bounds[self._indexed:]
        recent = np.flatnonzero((b[:, 2] >= x0) & (b[:, 0] <= x1) & (b[:, 3] >= y0) & (b[:, 1] <= y1))
        hits = np.concatenate([np.sort(hits), recent + self._indexed]).astype(np.intp)
        return hits[self.alive[hits]]

    def colors(self, class_colors: dict[str, RGB]) -> np.ndarray:
        """Return each item's display colour as an (N, 3) uint8 array."""
        self._build()
        if class_colors != self._class_colors:
            self._class_colors = dict(class_colors)
            self._rgb = self._colors_of(self.items)
        return self._rgb

    def _colors_of(self, annotations: list[Annotation]) -> np.ndarray:
        colors = self._class_colors
        return np.array([a.color or colors.get(a.class_name, UNCLASSIFIED_COLOR) for a in annotations],
                        dtype=np.uint8).reshape(-1, 3)

    def at(self, x: float, y: float, tolerance: float) -> Annotation | None:
        """Return the object under level-0 (x, y): a point or line within ``tolerance``, else the
        smallest area containing it (a nucleus inside a tumour outline wins over the outline)."""
        idx = self.query(x - tolerance, y - tolerance, x + tolerance, y + tolerance)
        if not len(idx):
            return None
        here = shapely.Point(x, y)
        best: tuple[float, Annotation] | None = None
        for i in idx[::-1]:
            a = self.items[i]
            if a.is_area:
                d = a.geometry.distance(here)
                hit = d == 0 or d <= tolerance * 0.5
                rank = a.geometry.area
            else:
                hit = a.geometry.distance(here) <= tolerance
                rank = -1.0  # thin things are hard to hit: they win when hit
            if hit and (best is None or rank < best[0]):
                best = (rank, a)
        return best[1] if best else None
