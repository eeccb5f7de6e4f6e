"""Outlines of the ranked regions on the slide, numbered as in the Regions panel; the selected one stands out.

Each outline is a level-0 path built once; a frame only changes the painter's
transform, and the pen is cosmetic so lines keep their width at every zoom.
Rank labels never cover one another: each takes the first free spot around its
outline, better ranks first, and one with no free spot is left out at that zoom
(its outline is still drawn, and the Regions dock lists every region).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from shapely.geometry import MultiPolygon, Polygon

from ..viewport import Viewport
from .analysis_result import RegionItem

GAP = 2  # screen pixels between an outline and a label beside it
OUTLINE_CELL = 4  # outline boxes are filed in cells this many labels wide and high: big boxes touch few cells

Rect = tuple[float, float, float, float]  # x, y, width, height in screen pixels


class Outline(NamedTuple):
    """A region's bounding box and the x extent of its top and bottom edges, where labels sit against
    the outline itself rather than against a box corner in empty space or beside a neighbour."""

    x0: float
    y0: float
    x1: float
    y1: float
    top_x0: float
    top_x1: float
    bottom_x0: float
    bottom_x1: float

    @classmethod
    def of_box(cls, x0: float, y0: float, x1: float, y1: float) -> Outline:
        return cls(x0, y0, x1, y1, x0, x1, x0, x1)

    @classmethod
    def of_geometry(cls, geometry) -> Outline:
        """Return the level-0 outline of a (Multi)Polygon: its box, and where its top and bottom rows run."""
        x0, y0, x1, y1 = (float(v) for v in geometry.bounds)
        pts = [pt for poly in _polygons(geometry) for pt in poly.exterior.coords]
        top = [x for x, y in pts if y == y0] or [x0, x1]
        bottom = [x for x, y in pts if y == y1] or [x0, x1]
        return cls(x0, y0, x1, y1, min(top), max(top), min(bottom), max(bottom))

    def on_screen(self, view: Viewport) -> Outline:
        ds, vx, vy = view.downsample, view.x0, view.y0
        x0, y0, x1, y1, tx0, tx1, bx0, bx1 = self
        return Outline((x0 - vx) / ds, (y0 - vy) / ds, (x1 - vx) / ds, (y1 - vy) / ds,
                       (tx0 - vx) / ds, (tx1 - vx) / ds, (bx0 - vx) / ds, (bx1 - vx) / ds)


def geometry_path(geometry) -> QPainterPath:
    """Return a level-0 QPainterPath of a (Multi)Polygon's outer and inner rings."""
    path = QPainterPath()
    for poly in _polygons(geometry):
        for ring in (poly.exterior, *poly.interiors):
            pts = list(ring.coords)
            path.moveTo(*pts[0])
            for x, y in pts[1:]:
                path.lineTo(x, y)
            path.closeSubpath()
    return path


def _polygons(geometry) -> list[Polygon]:
    parts = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry]
    return [p for p in parts if isinstance(p, Polygon)]


def label_spots(outline: Outline, size: tuple[float, float]) -> list[Rect]:
    """Return the spots a label of ``size`` may take, best first: above left, above right, below left,
    below right, then inside the top-left corner where the outline is at least twice the label each way."""
    w, h = size
    spots = [(outline.top_x0, outline.y0 - GAP - h, w, h), (outline.top_x1 - w, outline.y0 - GAP - h, w, h),
             (outline.bottom_x0, outline.y1 + GAP, w, h), (outline.bottom_x1 - w, outline.y1 + GAP, w, h)]
    if outline.top_x1 - outline.top_x0 >= 2 * w and outline.y1 - outline.y0 >= 2 * h:
        spots.append((outline.top_x0 + GAP, outline.y0 + GAP, w, h))
    return spots


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


class _RectGrid:
    """Rectangles filed under the grid cells they touch, so a query looks at its neighbours only."""

    def __init__(self, cell_w: float, cell_h: float) -> None:
        self._cw, self._ch = cell_w, cell_h
        self._cells: dict[tuple[int, int], list[tuple[Rect, int]]] = {}

    def _keys(self, r: Rect) -> list[tuple[int, int]]:
        cols = range(int(r[0] // self._cw), int((r[0] + r[2]) // self._cw) + 1)
        return [(i, j) for i in cols for j in range(int(r[1] // self._ch), int((r[1] + r[3]) // self._ch) + 1)]

    def add(self, r: Rect, owner: int) -> None:
        for key in self._keys(r):
            self._cells.setdefault(key, []).append((r, owner))

    def hits(self, r: Rect, owner: int = -1) -> bool:
        """Return True if ``r`` overlaps a filed rectangle of another owner."""
        for key in self._keys(r):
            for other, o in self._cells.get(key, ()):
                if o != owner and _overlap(r, other):
                    return True
        return False


def _onto(spot: Rect, edges: tuple[float, float, float, float]) -> Rect:
    """Return ``spot`` moved the least distance that puts it within ``edges`` (left, top, right, bottom)."""
    x, y, w, h = spot
    left, top, right, bottom = edges
    return max(left, min(x, right - w)), max(top, min(y, bottom - h)), w, h


def place_labels(outlines: Sequence[Outline], sizes: Sequence[tuple[float, float]], first: int | None = None,
                 bounds: Rect | None = None) -> list[Rect | None]:
    """Return a label rectangle per region (screen pixels), or None where every spot would cover a placed label.

    Regions are taken in the given order (best rank first), except ``first`` (the selected one), which
    is placed before all others and so always gets a spot (moved onto the screen, ``bounds``, when none of
    its spots is on it: a region zoomed into). A label takes its first spot on screen that covers neither
    a placed label nor another region's box; failing that, its first spot that covers no placed label.
    Rectangles are filed in grids, so hundreds of regions stay cheap.
    """
    placed: list[Rect | None] = [None] * len(outlines)
    if not outlines:
        return placed
    cw, ch = max(w for w, _ in sizes) or 1.0, max(h for _, h in sizes) or 1.0
    labels = _RectGrid(cw, ch)
    boxes = _RectGrid(cw * OUTLINE_CELL, ch * OUTLINE_CELL)
    left, top, right, bottom = ((bounds[0], bounds[1], bounds[0] + bounds[2], bounds[1] + bounds[3]) if bounds
                                else (-math.inf, -math.inf, math.inf, math.inf))
    for i, o in enumerate(outlines):  # clipped to the screen: a big region off to one side touches few cells
        x0, y0, x1, y1 = max(o.x0, left), max(o.y0, top), min(o.x1, right), min(o.y1, bottom)
        if x0 <= x1 and y0 <= y1:
            boxes.add((x0, y0, x1 - x0, y1 - y0), i)
    order = list(range(len(outlines)))
    if first is not None:
        order.remove(first)
        order.insert(0, first)
    for i in order:
        spots = label_spots(outlines[i], sizes[i])
        spot = fallback = None
        for s in spots:
            if s[0] < left or s[1] < top or s[0] + s[2] > right or s[1] + s[3] > bottom or labels.hits(s):
                continue
            if not boxes.hits(s, i):
                spot = s
                break
            fallback = fallback or s
        spot = spot or fallback or (_onto(spots[0], (left, top, right, bottom)) if i == first else None)
        if spot is not None:
            placed[i] = spot
            labels.add(spot, i)
    return placed


class RegionsLayer:
    """A :class:`~pathview.app.layers.ViewLayer` showing regions that are not dismissed."""

    def __init__(self) -> None:
        self.visible = True
        self.selected: str | None = None
        self._font = QFont()
        self._font.setPixelSize(14)
        self._font.setBold(True)
        self._regions: list[tuple[RegionItem, QPainterPath]] = []
        self._outlines: list[Outline] = []
        self._label_sizes: list[tuple[float, float]] = []
        #: The labels placed for the last (view, selected): tiles arriving repaint the same view many times.
        self._placed: tuple[object, dict[str, QRectF]] = (None, {})

    def set_regions(self, regions: list[RegionItem]) -> None:
        ranked = sorted(regions, key=lambda r: r.rank)
        self._regions = [(r, geometry_path(r.geometry)) for r in ranked]
        self._outlines = [Outline.of_geometry(r.geometry) for r in ranked]
        metrics = QFontMetricsF(self._font)
        self._label_sizes = [(b.width() + 8, b.height() + 4)
                             for b in (metrics.boundingRect(f"#{r.rank}") for r in ranked)]
        self._placed = (None, {})

    def label_rects(self, view: Viewport) -> dict[str, QRectF]:
        """Return where each on-screen region's rank label goes in ``view`` (screen pixels); left-out ones have none."""
        if self._placed[0] != (view, self.selected):
            self._placed = ((view, self.selected), self._place(view, self._on_screen(view)))
        return self._placed[1]

    def paint(self, painter: QPainter, view: Viewport) -> None:
        shown = self._on_screen(view)
        if not shown:
            return
        labels = self.label_rects(view)
        ds = view.downsample
        selected = [i for i in shown if self._regions[i][0].id == self.selected]
        order = [i for i in shown if i not in selected] + selected  # the selected one last, over its neighbours
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.save()
        painter.translate(-view.x0 / ds, -view.y0 / ds)
        painter.scale(1 / ds, 1 / ds)
        for i in order:
            region, path = self._regions[i]
            chosen = i in selected
            if chosen:  # a dark halo under the class colour: visible on pale and on dark tissue
                halo = QPen(QColor(0, 0, 0, 160), 6)
                halo.setCosmetic(True)
                painter.strokePath(path, halo)
            pen = QPen(QColor(*region.color), 3 if chosen else 1.5)
            pen.setCosmetic(True)
            painter.strokePath(path, pen)
        painter.restore()
        painter.setFont(self._font)
        for i in order:  # labels over every outline
            region = self._regions[i][0]
            box = labels.get(region.id)
            if box is None:
                continue
            chosen = i in selected
            painter.setPen(QPen(QColor(0, 0, 0) if chosen else QColor(255, 255, 255), 1.5))
            painter.setBrush(QColor(*region.color))
            painter.drawRoundedRect(box, 3, 3)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, f"#{region.rank}")
        painter.restore()

    def _on_screen(self, view: Viewport) -> list[int]:
        """Return the indices (best rank first) of the regions whose box meets the screen."""
        x0, y0, ds = view.x0, view.y0, view.downsample
        x1, y1 = x0 + view.width * ds, y0 + view.height * ds
        return [i for i, o in enumerate(self._outlines) if not (o.x1 < x0 or o.y1 < y0 or o.x0 > x1 or o.y0 > y1)]

    def _place(self, view: Viewport, shown: list[int]) -> dict[str, QRectF]:
        outlines = [self._outlines[i].on_screen(view) for i in shown]
        ids = [self._regions[i][0].id for i in shown]
        first = ids.index(self.selected) if self.selected in ids else None
        placed = place_labels(outlines, [self._label_sizes[i] for i in shown], first, (0, 0, view.width, view.height))
        return {rid: QRectF(*rect) for rid, rect in zip(ids, placed) if rect is not None}
