"""Drawing tools: rectangle, ellipse, polygon, brush, point and line (ruler), as slide-view tools.

Every tool keeps navigation at hand: the wheel still zooms (the view handles it), and
a middle-button drag or a drag with Space held pans. A finished shape goes straight
to the store through the controller (one undo step each); the shape being drawn is
painted live with its measurement beside the cursor.
"""

from __future__ import annotations

import shapely
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QPainter, QPen

from ..findings import Annotation, ellipse, rectangle
from ..viewport import Viewport
from .annotation_edit import valid_polygon
from .annotation_layer import geometry_text, paint_label
from .annotation_paint import draw_geometry, fill_brush, outline_pen

#: Brush diameter in screen pixels (the stroke is as wide at any zoom as it looks).
BRUSH_PX = 24
#: A drag shorter than this (screen px) is a click, not a shape.
MIN_DRAG_PX = 3


class ViewToolBase:
    """Shared behaviour: pan with the middle button or Space+drag; subclasses draw."""

    name = ""
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, controller) -> None:
        self.ctl = controller
        self._pan: QPointF | None = None

    # The slide view calls these first; True means the tool used the event.
    def mouse_press(self, view, event) -> bool:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self.ctl.space_down):
            self._pan = event.position()
            view.setCursor(Qt.CursorShape.ClosedHandCursor)
            return True
        return self.press(view, event)

    def mouse_move(self, view, event) -> bool:
        if self._pan is not None:
            delta = event.position() - self._pan
            self._pan = event.position()
            dpr = view.devicePixelRatioF()
            view.set_view(view.view.panned(-delta.x() * dpr, -delta.y() * dpr))
            return True
        return self.move(view, event)

    def mouse_release(self, view, event) -> bool:
        if self._pan is not None:
            self._pan = None
            view.setCursor(self.cursor)
            return True
        return self.release(view, event)

    def mouse_double_click(self, view, event) -> bool:
        return self.double_click(view, event)

    def key_press(self, view, event) -> bool:
        return self.key(view, event)

    # Subclass hooks.
    def press(self, view, event) -> bool:
        return False

    def move(self, view, event) -> bool:
        return False

    def release(self, view, event) -> bool:
        return False

    def double_click(self, view, event) -> bool:
        return True  # a double-click while drawing never zooms the slide away

    def key(self, view, event) -> bool:
        return False

    @property
    def busy(self) -> bool:
        """True while a shape is half drawn (Esc then cancels it instead of leaving the tool)."""
        return False

    def cancel(self) -> None:
        """Drop the shape being drawn."""

    def paint_preview(self, painter: QPainter, view: Viewport) -> None:
        pass

    def _draw(self, painter: QPainter, view: Viewport, geometry, label_at=None) -> None:
        rgb = self.ctl.new_color()
        pen = outline_pen(rgb, 2.0, Qt.PenStyle.DashLine)
        draw_geometry(painter, geometry, (view.x0, view.y0), view.downsample, pen,
                      fill_brush(rgb) if geometry.geom_type in ("Polygon", "MultiPolygon") else None)
        if label_at is not None:
            paint_label(painter, view, label_at, geometry_text(geometry, self.ctl.mpp))


class DragShapeTool(ViewToolBase):
    """Press, drag, release: a rectangle, an ellipse or a line (the ruler)."""

    def __init__(self, controller, kind: str) -> None:
        super().__init__(controller)
        self.kind = self.name = kind
        self._start: tuple[float, float] | None = None
        self._end: tuple[float, float] | None = None

    @property
    def busy(self) -> bool:
        return self._start is not None

    def cancel(self) -> None:
        self._start = self._end = None

    def press(self, view, event) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        self._start = self._end = view.level0_at(event.position())
        return True

    def move(self, view, event) -> bool:
        if self._start is None:
            return False
        self._end = self._constrained(view.level0_at(event.position()), event.modifiers())
        view.update()
        return True

    def release(self, view, event) -> bool:
        if self._start is None or event.button() != Qt.MouseButton.LeftButton:
            return False
        self._end = self._constrained(view.level0_at(event.position()), event.modifiers())
        geometry = self.geometry()
        self.cancel()
        span = max(geometry.bounds[2] - geometry.bounds[0], geometry.bounds[3] - geometry.bounds[1]) if geometry else 0
        if geometry is not None and span / view.view.downsample >= MIN_DRAG_PX:
            self.ctl.create(self.kind, geometry)
        view.update()
        return True

    def _constrained(self, end: tuple[float, float], modifiers) -> tuple[float, float]:
        """Shift draws a square, a circle, or a horizontal/vertical/45° line."""
        if not modifiers & Qt.KeyboardModifier.ShiftModifier or self._start is None:
            return end
        (x0, y0), (x1, y1) = self._start, end
        dx, dy = x1 - x0, y1 - y0
        if self.kind == "line":
            if abs(dx) > 2 * abs(dy):
                return x1, y0
            if abs(dy) > 2 * abs(dx):
                return x0, y1
        side = max(abs(dx), abs(dy))
        return x0 + (side if dx >= 0 else -side), y0 + (side if dy >= 0 else -side)

    def geometry(self):
        if self._start is None or self._end is None or self._start == self._end:
            return None
        (x0, y0), (x1, y1) = self._start, self._end
        if self.kind == "line":
            return shapely.LineString([(x0, y0), (x1, y1)])
        if x0 == x1 or y0 == y1:
            return None
        return (rectangle if self.kind == "rectangle" else ellipse)(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def paint_preview(self, painter: QPainter, view: Viewport) -> None:
        geometry = self.geometry()
        if geometry is not None:
            self._draw(painter, view, geometry, label_at=self._end)


class PolygonTool(ViewToolBase):
    """Click the vertices; double-click or Enter closes; Backspace takes the last one back; Esc cancels."""

    name = "polygon"

    def __init__(self, controller) -> None:
        super().__init__(controller)
        self.points: list[tuple[float, float]] = []
        self._hover: tuple[float, float] | None = None

    @property
    def busy(self) -> bool:
        return bool(self.points)

    def cancel(self) -> None:
        self.points, self._hover = [], None

    def press(self, view, event) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        p = view.level0_at(event.position())
        if not self.points or _screen_distance(view, self.points[-1], p) > 1:
            self.points.append(p)
        view.update()
        return True

    def move(self, view, event) -> bool:
        if not self.points:
            return False
        self._hover = view.level0_at(event.position())
        view.update()
        return True

    def release(self, view, event) -> bool:
        return bool(self.points)

    def double_click(self, view, event) -> bool:
        self.press(view, event)  # the double-click's point is the last corner (added once)
        self.close(view)
        return True

    def key(self, view, event) -> bool:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.points:
            self.close(view)
            return True
        if event.key() == Qt.Key.Key_Backspace and self.points:
            self.points.pop()
            view.update()
            return True
        return False

    def close(self, view) -> None:
        """Finish the polygon (at least three vertices), repaired if its edges cross."""
        points, self.points, self._hover = self.points, [], None
        if len(points) >= 3:
            polygon = valid_polygon(shapely.Polygon(points))
            if polygon is not None:
                self.ctl.create("polygon", polygon)
                return
        self.ctl.say("A polygon needs at least three corners.")
        view.update()

    def paint_preview(self, painter: QPainter, view: Viewport) -> None:
        if not self.points:
            return
        points = self.points + ([self._hover] if self._hover else [])
        if len(points) >= 3:
            self._draw(painter, view, shapely.Polygon(points), label_at=points[-1])
        elif len(points) == 2:
            self._draw(painter, view, shapely.LineString(points))
        for x, y in self.points:
            sx, sy = view.to_screen(x, y)
            painter.setPen(QPen(Qt.GlobalColor.black, 1))
            painter.setBrush(Qt.GlobalColor.white)
            painter.drawEllipse(QPointF(sx, sy), 3.5, 3.5)


class BrushTool(ViewToolBase):
    """Drag to paint. A stroke that starts inside the one selected area adds to it; Alt+drag or the
    right button takes away from it (QuPath's brush works the same)."""

    name = "brush"

    def __init__(self, controller) -> None:
        super().__init__(controller)
        self.points: list[tuple[float, float]] = []
        self._subtract = False
        self._radius = 1.0

    @property
    def busy(self) -> bool:
        return bool(self.points)

    def cancel(self) -> None:
        self.points = []

    def press(self, view, event) -> bool:
        alt = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
        if event.button() not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return False
        self._subtract = alt or event.button() == Qt.MouseButton.RightButton
        self._radius = BRUSH_PX / 2 * view.devicePixelRatioF() * view.view.downsample
        self.points = [view.level0_at(event.position())]
        view.update()
        return True

    def move(self, view, event) -> bool:
        if not self.points:
            return False
        p = view.level0_at(event.position())
        if _screen_distance(view, self.points[-1], p) >= 1.5:
            self.points.append(p)
            view.update()
        return True

    def release(self, view, event) -> bool:
        if not self.points:
            return False
        stroke = self.stroke()
        start, self.points = self.points[0], []
        target = self._target(start)
        if target is not None:
            merged = target.geometry.difference(stroke) if self._subtract else target.geometry.union(stroke)
            merged = valid_polygon(merged) if merged.geom_type in ("Polygon", "MultiPolygon") else None
            if merged is None:
                self.ctl.say("That would erase the whole annotation: press Delete to remove it.")
            else:
                kind = "polygon" if target.kind in ("rectangle", "ellipse") else target.kind  # no longer one
                self.ctl.update([target.with_(geometry=merged, kind=kind)], "brush")
        elif not self._subtract:
            self.ctl.create("brush", stroke)
        view.update()
        return True

    def _target(self, start: tuple[float, float]) -> Annotation | None:
        chosen = self.ctl.selected()
        if len(chosen) != 1 or not chosen[0].is_area or chosen[0].locked:
            return None
        inside = chosen[0].geometry.intersects(shapely.Point(start).buffer(self._radius * 0.5))
        return chosen[0] if inside or self._subtract else None

    def stroke(self):
        if len(self.points) == 1:
            return shapely.Point(self.points[0]).buffer(self._radius, quad_segs=8)
        return shapely.LineString(self.points).buffer(self._radius, quad_segs=8)

    def paint_preview(self, painter: QPainter, view: Viewport) -> None:
        if not self.points:
            return
        rgb = (90, 90, 90) if self._subtract else self.ctl.new_color()
        draw_geometry(painter, self.stroke(), (view.x0, view.y0), view.downsample,
                      outline_pen(rgb, 1.5, Qt.PenStyle.DashLine), fill_brush(rgb, 90))


class PointTool(ViewToolBase):
    """Click to place points; while a points annotation of the current class is selected, clicks add
    to it (a count, as in QuPath); Esc or another class starts a new one."""

    name = "point"

    def press(self, view, event) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        x, y = view.level0_at(event.position())
        chosen = self.ctl.selected()
        if len(chosen) == 1 and chosen[0].geometry.geom_type in ("Point", "MultiPoint") and not chosen[0].locked \
                and chosen[0].class_name == self.ctl.current_class:
            a = chosen[0]
            points = shapely.MultiPoint([*shapely.get_coordinates(a.geometry).tolist(), (x, y)])
            self.ctl.update([a.with_(geometry=points, kind="points")], "add point")
        else:
            self.ctl.create("point", shapely.Point(x, y))
        return True

    def release(self, view, event) -> bool:
        return event.button() == Qt.MouseButton.LeftButton


def _screen_distance(view, a: tuple[float, float], b: tuple[float, float]) -> float:
    return ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5 / view.view.downsample
