"""Paint a slide's annotations over the tiles: class colours, fast with 100,000 objects in view.

Annotations are rendered into cached 256-px display tiles for the current zoom; a pan
only renders the tiles that come into view, and an edit drops only the tiles its
shape touches. Level of detail inside a tile: objects under ~3 screen px become dots
(one call per colour), outlines with many vertices are simplified to half a screen
pixel. Tiles not rendered within a frame's budget follow in the next frames, so a
frame never waits for 100,000 polygons. Selection, vertex handles and the shape being
drawn are painted live on top.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np
import shapely
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ..findings import Annotation, measure_geometry
from ..viewport import Viewport
from ..wording import count
from .annotation_edit import handles
from .annotation_paint import OUTLINE_PX, POINT_PX, draw_geometry, fill_brush, outline_pen, qpolygon
from .annotation_scene import AnnotationScene

TILE = 256
#: Objects smaller than this on screen (device px) are drawn as round dots of their size.
DOT_PX = 6.0
#: Objects smaller than this (device px) go into a density raster: the mean class colour
#: per pixel, opacity from how much of the pixel they cover.
DENSITY_PX = 1.5
#: Outlines with more vertices than this are simplified to half a screen pixel.
SIMPLIFY_ABOVE = 64
#: Time a frame may spend rendering new annotation tiles; the rest follow next frame.
FRAME_BUDGET_S = 0.020
#: Rendered tiles kept (256 KB each).
CACHE_TILES = 192
SELECTED_RGB = (255, 230, 0)  # QuPath's selection yellow
HANDLE_PX = 4.0
#: Rulers labelled with their length at most, per frame.
LABELS_MAX = 50


class AnnotationLayer:
    """A :class:`~pathview.app.layers.ViewLayer` for one slide view's annotations."""

    def __init__(self, widget: QWidget, scene: AnnotationScene) -> None:
        self.widget = widget
        self.scene = scene
        self.visible = True
        self.class_colors: dict[str, tuple[int, int, int]] = {}
        self.selected: list[str] = []
        self.hidden: set[str] = set()  # being dragged: drawn by the tool instead
        self.tool = None  # the active tool; its ``paint_preview(painter, view)`` draws on top
        self.mpp: float | None = None
        self.pending = False  # tiles left for the next frame
        self._tiles: OrderedDict[tuple[float, int, int], QImage | None] = OrderedDict()

    # -- state ----------------------------------------------------------------------------------
    def set_class_colors(self, colors: dict[str, tuple[int, int, int]]) -> None:
        if colors != self.class_colors:
            self.class_colors = dict(colors)
            self.invalidate()

    def set_hidden(self, ids: Iterable[str]) -> None:
        ids = set(ids)
        changed = ids ^ self.hidden
        self.hidden = ids
        self.invalidate([a.bounds for a in map(self.scene.get, changed) if a is not None])

    def invalidate(self, boxes: list[tuple[float, float, float, float]] | None = None) -> None:
        """Drop the rendered tiles that meet ``boxes`` (level-0 x0, y0, x1, y1); all when None."""
        if boxes is None:
            self._tiles.clear()
        elif boxes:
            b = np.asarray(boxes, dtype=float).reshape(-1, 4)
            for key in list(self._tiles):
                ds, c, r = key
                span, pad = TILE * ds, (DOT_PX + OUTLINE_PX + POINT_PX + 2) * ds
                x0, y0 = c * span - pad, r * span - pad
                x1, y1 = x0 + span + 2 * pad, y0 + span + 2 * pad
                if np.any((b[:, 2] >= x0) & (b[:, 0] <= x1) & (b[:, 3] >= y0) & (b[:, 1] <= y1)):
                    del self._tiles[key]
        self.widget.update()

    # -- painting -------------------------------------------------------------------------------
    def paint(self, painter: QPainter, view: Viewport) -> None:
        if len(self.scene):
            self._paint_tiles(painter, view)
            self._paint_lengths(painter, view)
            self._paint_selection(painter, view)
        preview = getattr(self.tool, "paint_preview", None)
        if preview is not None:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            preview(painter, view)

    def _paint_tiles(self, painter: QPainter, view: Viewport) -> None:
        ds = view.downsample
        span = TILE * ds
        c0, c1 = math.floor(view.x0 / span), math.floor((view.x0 + view.width * ds) / span)
        r0, r1 = math.floor(view.y0 / span), math.floor((view.y0 + view.height * ds) / span)
        ox, oy = round(view.x0 / ds), round(view.y0 / ds)
        mid_c, mid_r = (c0 + c1) / 2, (r0 + r1) / 2
        keys = sorted(((c, r) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)),
                      key=lambda k: (k[0] - mid_c) ** 2 + (k[1] - mid_r) ** 2)
        start = time.perf_counter()
        missing = False
        for c, r in keys:
            key = (ds, c, r)
            if key in self._tiles:
                self._tiles.move_to_end(key)
                image = self._tiles[key]
            elif time.perf_counter() - start < FRAME_BUDGET_S:
                image = self._tiles[key] = self._render_tile(ds, c, r)
                while len(self._tiles) > CACHE_TILES:
                    self._tiles.popitem(last=False)
            else:
                missing = True
                continue
            if image is not None:
                painter.drawImage(QPoint(c * TILE - ox, r * TILE - oy), image)
        self.pending = missing
        if missing:
            QTimer.singleShot(0, self.widget.update)

    def _render_tile(self, ds: float, col: int, row: int) -> QImage | None:
        scene = self.scene
        span = TILE * ds
        x0, y0 = col * span, row * span
        pad = (DOT_PX + OUTLINE_PX + POINT_PX) * ds
        idx = scene.query(x0 - pad, y0 - pad, x0 + span + pad, y0 + span + pad)
        if self.hidden and len(idx):
            idx = idx[[scene.items[i].id not in self.hidden for i in idx]]
        if not len(idx):
            return None
        image = QImage(TILE, TILE, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        b = scene.bounds[idx]
        size = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) / ds
        tiny = (size < DOT_PX) & ~scene.is_point[idx]
        colors = scene.colors(self.class_colors)
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        dust = tiny & (size < DENSITY_PX)
        if dust.any():
            raster = _density(cx[dust], cy[dust], b[dust], colors[idx[dust]], x0, y0, ds)
            painter.drawImage(0, 0, QImage(raster.data, TILE, TILE, QImage.Format.Format_ARGB32_Premultiplied))
        dots = tiny & ~dust
        if dots.any():
            self._paint_dots(painter, cx[dots], cy[dots], np.clip(np.round(size[dots]), 2, DOT_PX),
                             colors[idx[dots]], x0, y0, ds)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        shapes = idx[~tiny]
        if len(shapes):
            self._paint_shapes(painter, shapes, size[~tiny], colors, (x0, y0), ds)
        painter.end()
        return image

    def _paint_shapes(self, painter: QPainter, shapes: np.ndarray, size: np.ndarray, colors: np.ndarray,
                      origin: tuple[float, float], ds: float) -> None:
        """Outlines in added order. Plain polygons (the bulk: nuclei, cells) take a vectorised path:
        all their vertices come from shapely in one call; small ones get a thinner outline."""
        scene = self.scene
        geoms = np.array([scene.items[i].geometry for i in shapes], dtype=object)
        plain = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0) \
            & (shapely.get_num_coordinates(geoms) <= SIMPLIFY_ABOVE)
        if plain.any():
            xy, owner = shapely.get_coordinates(shapely.get_exterior_ring(geoms[plain]), return_index=True)
            xy = (xy - origin) / ds
            ends = np.cumsum(np.bincount(owner, minlength=int(plain.sum())))
            starts = ends - np.bincount(owner, minlength=int(plain.sum()))
        styles: dict[tuple, tuple] = {}
        k = 0
        for j, i in enumerate(shapes):
            rgb = tuple(int(v) for v in colors[i])
            width = OUTLINE_PX if size[j] >= 4 * DOT_PX else 1.0
            if (rgb, width) not in styles:
                styles[(rgb, width)] = (outline_pen(rgb, width), fill_brush(rgb))
            pen, brush = styles[(rgb, width)]
            if plain[j]:
                painter.setPen(pen)
                painter.setBrush(brush)
                painter.drawPolygon(qpolygon(xy[starts[k]:ends[k]]))
                k += 1
                continue
            a = scene.items[i]
            g = a.geometry
            if ds > 1 and shapely.get_num_coordinates(g) > SIMPLIFY_ABOVE:
                g = shapely.simplify(g, ds * 0.5)
            draw_geometry(painter, g, origin, ds, pen, brush if a.is_area else None)

    @staticmethod
    def _paint_dots(painter: QPainter, cx: np.ndarray, cy: np.ndarray, diameter: np.ndarray, rgb: np.ndarray,
                    x0: float, y0: float, ds: float) -> None:
        """Small objects as dots of their own size, one draw call per colour and size."""
        sx, sy = (cx - x0) / ds, (cy - y0) / ds
        keys = (rgb.astype(np.int64) @ np.array([65536, 256, 1])) * 16 + diameter.astype(np.int64)
        for key in np.unique(keys):
            m = keys == key
            color, width = int(key) >> 4, int(key) & 15
            pen = QPen(QColor(color >> 16, (color >> 8) & 255, color & 255, 210), width)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap if width > 2 else Qt.PenCapStyle.SquareCap)
            painter.setPen(pen)
            painter.drawPointsNp(sx[m], sy[m])

    def _paint_lengths(self, painter: QPainter, view: Viewport) -> None:
        """Lines are rulers: their length stays written beside them (the first LABELS_MAX in view)."""
        x0, y0 = view.to_level0(0, 0)
        x1, y1 = view.to_level0(view.width, view.height)
        idx = self.scene.query(x0, y0, x1, y1)
        for i in idx[self.scene.is_line[idx]][:LABELS_MAX]:
            a = self.scene.items[i]
            b = a.bounds
            if a.id not in self.hidden and max(b[2] - b[0], b[3] - b[1]) / view.downsample >= 30:
                paint_label(painter, view, _line_end(a), measurement_text(a, self.mpp))

    def _paint_selection(self, painter: QPainter, view: Viewport) -> None:
        chosen = [a for a in map(self.scene.get, self.selected) if a is not None and a.id not in self.hidden]
        if not chosen:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        origin = (view.x0, view.y0)
        for a in chosen:
            style = Qt.PenStyle.DashLine if a.locked else Qt.PenStyle.SolidLine
            halo = outline_pen((0, 0, 0), OUTLINE_PX + 2.5)
            draw_geometry(painter, a.geometry, origin, view.downsample, halo, None, point_px=POINT_PX + 1.5)
            draw_geometry(painter, a.geometry, origin, view.downsample, outline_pen(SELECTED_RGB, OUTLINE_PX + 0.5, style),
                          None, point_px=POINT_PX)
        if len(chosen) == 1 and not chosen[0].locked:
            self._paint_handles(painter, view, chosen[0])

    @staticmethod
    def _paint_handles(painter: QPainter, view: Viewport, annotation: Annotation) -> None:
        xy = handles(annotation)
        b = annotation.bounds
        if not len(xy) or max(b[2] - b[0], b[3] - b[1]) / view.downsample < 12:
            return
        painter.setPen(QPen(QColor(0, 0, 0), 1.2))
        painter.setBrush(QColor(255, 255, 255))
        for x, y in xy:
            sx, sy = view.to_screen(x, y)
            painter.drawRect(QRectF(sx - HANDLE_PX, sy - HANDLE_PX, 2 * HANDLE_PX, 2 * HANDLE_PX))


def _density(cx: np.ndarray, cy: np.ndarray, boxes: np.ndarray, rgb: np.ndarray,
             x0: float, y0: float, ds: float) -> np.ndarray:
    """Return a TILE x TILE premultiplied BGRA raster of sub-pixel objects: mean colour per pixel,
    opacity growing with the share of the pixel they cover (never fainter than 25%)."""
    px, py = np.floor((cx - x0) / ds).astype(np.int64), np.floor((cy - y0) / ds).astype(np.int64)
    inside = (px >= 0) & (px < TILE) & (py >= 0) & (py < TILE)  # each object counts in one tile only
    px, py, boxes, rgb = px[inside], py[inside], boxes[inside], rgb[inside]
    cell = py * TILE + px
    n = TILE * TILE
    count = np.bincount(cell, minlength=n)
    cover = np.bincount(cell, weights=(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) * 0.785 / ds ** 2,
                        minlength=n)
    alpha = np.where(count > 0, np.clip(np.sqrt(cover), 0.25, 0.9), 0.0)
    out = np.zeros((n, 4), dtype=np.uint8)
    hit = count > 0
    for channel, source in ((2, 0), (1, 1), (0, 2)):  # BGRA in memory on little-endian machines
        mean = np.bincount(cell, weights=rgb[:, source].astype(float), minlength=n)[hit] / count[hit]
        out[hit, channel] = (mean * alpha[hit]).astype(np.uint8)
    out[:, 3] = (alpha * 255).astype(np.uint8)
    return out.reshape(TILE, TILE, 4)


def _line_end(annotation: Annotation) -> tuple[float, float]:
    x, y = shapely.get_coordinates(annotation.geometry)[-1]
    return float(x), float(y)


def measurement_text(annotation: Annotation, mpp: float | None) -> str:
    """The measurement a pathologist wants first, short: '31,872 µm²', '250.7 µm', '3 points'."""
    return geometry_text(annotation.geometry, mpp)


def geometry_text(geometry, mpp: float | None) -> str:
    """:func:`measurement_text` of a bare geometry (a shape being drawn)."""
    values = measure_geometry(geometry, mpp)
    if not values:
        return ""
    name, value = next(iter(values.items()))
    if name == "Points":
        return count(round(value), 'point')
    unit = name.split(" ", 1)[1]
    if unit == "µm²" and value >= 1e5:
        return f"{value / 1e6:.3f} mm²"
    return f"{value:,.0f} {unit}" if value >= 1000 else f"{value:.1f} {unit}" if value >= 10 else f"{value:.3g} {unit}"


def paint_label(painter: QPainter, view: Viewport, at: tuple[float, float], text: str) -> None:
    """Draw ``text`` in a dark box just beside the level-0 point ``at``."""
    if not text:
        return
    sx, sy = view.to_screen(*at)
    font = QFont()
    font.setPixelSize(13)
    painter.setFont(font)
    rect = painter.fontMetrics().boundingRect(text).adjusted(-5, -3, 5, 3)
    rect.moveTopLeft(QPoint(round(sx) + 12, round(sy) + 10))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(0, 0, 0, 170))
    painter.drawRoundedRect(QRectF(rect), 3, 3)
    painter.setPen(QColor(255, 255, 255))
    painter.drawText(QPointF(rect.left() + 5, rect.bottom() - 4), text)
