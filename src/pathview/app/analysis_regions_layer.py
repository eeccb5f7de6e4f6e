"""Outlines of the ranked regions on the slide, numbered as in the Regions panel; the selected one stands out.

Each outline is a level-0 path built once; a frame only changes the painter's
transform, and the pen is cosmetic so lines keep their width at every zoom.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from shapely.geometry import MultiPolygon, Polygon

from ..viewport import Viewport
from .analysis_result import RegionItem


def geometry_path(geometry) -> QPainterPath:
    """Return a level-0 QPainterPath of a (Multi)Polygon's outer and inner rings."""
    path = QPainterPath()
    polygons = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry]
    for poly in polygons:
        if not isinstance(poly, Polygon):
            continue
        for ring in (poly.exterior, *poly.interiors):
            pts = list(ring.coords)
            path.moveTo(*pts[0])
            for x, y in pts[1:]:
                path.lineTo(x, y)
            path.closeSubpath()
    return path


def label_anchor(geometry) -> tuple[float, float]:
    """Return the top-left corner of the outline itself (not of its bounding box, which a neighbour may share)."""
    polygons = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry]
    corners = [pt for poly in polygons if isinstance(poly, Polygon) for pt in poly.exterior.coords]
    if not corners:
        x0, y0, _, _ = geometry.bounds
        return x0, y0
    x, y = min(corners, key=lambda p: (p[1], p[0]))
    return float(x), float(y)


class RegionsLayer:
    """A :class:`~pathview.app.layers.ViewLayer` showing regions that are not dismissed."""

    def __init__(self) -> None:
        self.visible = True
        self.selected: str | None = None
        self._regions: list[tuple[RegionItem, QPainterPath]] = []
        self._anchors: dict[str, tuple[float, float]] = {}

    def set_regions(self, regions: list[RegionItem]) -> None:
        self._regions = [(r, geometry_path(r.geometry)) for r in regions]
        self._anchors = {r.id: label_anchor(r.geometry) for r in regions}

    def paint(self, painter: QPainter, view: Viewport) -> None:
        if not self._regions:
            return
        ds = view.downsample
        font = QFont()
        font.setPixelSize(14)
        font.setBold(True)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setFont(font)
        vx1, vy1 = view.x0 + view.width * ds, view.y0 + view.height * ds
        for region, path in self._regions:
            bx0, by0, bx1, by1 = region.bbox
            if bx1 < view.x0 or by1 < view.y0 or bx0 > vx1 or by0 > vy1:
                continue  # off screen
            chosen = region.id == self.selected
            painter.save()
            painter.translate(-view.x0 / ds, -view.y0 / ds)
            painter.scale(1 / ds, 1 / ds)
            if chosen:  # a dark halo under the class colour: visible on pale and on dark tissue
                halo = QPen(QColor(0, 0, 0, 160), 6)
                halo.setCosmetic(True)
                painter.strokePath(path, halo)
            pen = QPen(QColor(*region.color), 3 if chosen else 1.5)
            pen.setCosmetic(True)
            painter.strokePath(path, pen)
            painter.restore()
            sx, sy = view.to_screen(*self._anchors[region.id])
            label = f"#{region.rank}"
            box = QRectF(painter.fontMetrics().boundingRect(label).adjusted(-4, -2, 4, 2))
            box.moveBottomLeft(QPointF(sx, sy - 2))
            painter.setPen(QPen(QColor(0, 0, 0) if chosen else QColor(255, 255, 255), 1.5))
            painter.setBrush(QColor(*region.color))
            painter.drawRoundedRect(box, 3, 3)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
        painter.restore()
