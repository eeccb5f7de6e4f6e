"""The select tool: click to select (Shift adds), drag to move, drag a handle to reshape.

A drag that starts on empty slide draws a dashed rubber band and selects every
annotation it touches (Shift adds them to the selection), as QuPath's selection mode
does; panning stays at hand with Space+drag or the middle button. Locked annotations
can be selected but not moved or reshaped. The moved or reshaped shape is drawn live
and saved on release as one undo step.
"""

from __future__ import annotations

import numpy as np
import shapely
from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter

from ..findings import Annotation
from ..viewport import Viewport
from ..wording import count
from .annotation_edit import drag_handle, handles, moved
from .annotation_layer import HANDLE_PX, SELECTED_RGB, measurement_text, paint_label
from .annotation_paint import draw_geometry, fill_brush, outline_pen
from .annotation_scene import AnnotationScene
from .annotation_tools import MIN_DRAG_PX, ViewToolBase

#: How close (screen px) a click must be to a line, a point or a handle to hit it.
HIT_PX = 6.0
#: The rubber band's outline: dark, so it shows on pale glass and on stained tissue alike.
BAND_RGB = (40, 40, 40)


def touching(scene: AnnotationScene, box: tuple[float, float, float, float]) -> list[str]:
    """Return the ids of the annotations whose shape meets the level-0 ``box`` (x0, y0, x1, y1)."""
    candidates = scene.query(*box)
    if not len(candidates):
        return []
    shapes = np.array([scene.items[i].geometry for i in candidates], dtype=object)
    hit = shapely.intersects(shapes, shapely.box(*box))
    return [scene.items[i].id for i in candidates[hit]]


class SelectTool(ViewToolBase):
    name = "select"
    cursor = Qt.CursorShape.ArrowCursor

    def __init__(self, controller) -> None:
        super().__init__(controller)
        self._origin: tuple[float, float] | None = None  # level-0 press point of a move
        self._moving: list[Annotation] = []
        self._offset = (0.0, 0.0)
        self._handle: tuple[Annotation, int] | None = None
        self._reshaped = None
        self._pressed: str | None = None  # a click without a drag selects just this one
        self._band: tuple[float, float, float, float] | None = None  # level-0 start and end of a rubber band
        self._kept: list[str] = []  # the selection a Shift+band adds to

    @property
    def busy(self) -> bool:
        return bool(self._moving or self._handle or self._band)

    def cancel(self) -> None:
        self._origin, self._moving, self._handle, self._reshaped = None, [], None, None
        self._band, self._kept = None, []
        self.ctl.layer_hide([])

    def press(self, view, event) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        x, y = view.level0_at(event.position())
        tol = HIT_PX * view.devicePixelRatioF() * view.view.downsample
        chosen = self.ctl.selected()
        if len(chosen) == 1 and not chosen[0].locked:
            xy = handles(chosen[0])
            if len(xy):
                d = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
                if d.min() <= max(tol, HANDLE_PX * view.view.downsample):
                    self._handle = (chosen[0], int(d.argmin()))
                    self.ctl.layer_hide([chosen[0].id])
                    return True
        hit = self.ctl.scene.at(x, y, tol)
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        ids = [a.id for a in chosen]
        if hit is None:
            if not shift:
                self.ctl.select([])
            self._band, self._kept = (x, y, x, y), ids if shift else []
            return True
        if shift:
            self.ctl.select([i for i in ids if i != hit.id] if hit.id in ids else ids + [hit.id])
            return True
        if hit.id not in ids:
            self.ctl.select([hit.id])
        self._pressed = hit.id
        movable = [a for a in self.ctl.selected() if not a.locked]
        if movable:
            self._origin, self._moving, self._offset = (x, y), movable, (0.0, 0.0)
        return True

    def move(self, view, event) -> bool:
        if self._band is not None:
            self._band = (*self._band[:2], *view.level0_at(event.position()))
            view.update()
            return True
        if self._handle is not None:
            ann, index = self._handle
            self._reshaped = drag_handle(ann, index, *view.level0_at(event.position()))
            view.update()
            return True
        if self._origin is not None:
            x, y = view.level0_at(event.position())
            self._offset = (x - self._origin[0], y - self._origin[1])
            if self._offset != (0.0, 0.0):
                self.ctl.layer_hide([a.id for a in self._moving])
            view.update()
            return True
        return False

    def release(self, view, event) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        if self._band is not None:
            self._finish_band(view, view.level0_at(event.position()))
            return True
        if self._handle is not None:
            ann, reshaped = self._handle[0], self._reshaped
            self.cancel()
            if reshaped is not None:
                self.ctl.update([ann.with_(geometry=reshaped)], "reshape")
            return True
        pressed, self._pressed = self._pressed, None
        if self._origin is not None:
            dx, dy = self._offset
            moving = self._moving
            self.cancel()
            if abs(dx) + abs(dy) > 0:
                self.ctl.update([a.with_(geometry=moved(a, dx, dy)) for a in moving], "move")
                return True
        if pressed is not None:
            self.ctl.select([pressed])
            return True
        return False

    def _finish_band(self, view, end: tuple[float, float]) -> None:
        """Select what the band touches (added to the kept selection); a band too small to see is a click."""
        x0, y0 = self._band[:2]
        kept = self._kept
        self.cancel()
        view.update()
        if max(abs(end[0] - x0), abs(end[1] - y0)) / view.view.downsample < MIN_DRAG_PX:
            return
        found = touching(self.ctl.scene, (min(x0, end[0]), min(y0, end[1]), max(x0, end[0]), max(y0, end[1])))
        self.ctl.select(kept + [i for i in found if i not in kept])
        self.ctl.say(f"Selected {count(len(self.ctl.selected()), 'annotation')}.")

    def double_click(self, view, event) -> bool:
        return False  # on empty slide: zoom in, as in navigation

    def paint_preview(self, painter: QPainter, view: Viewport) -> None:
        if self._band is not None:
            x0, y0, x1, y1 = self._band
            draw_geometry(painter, shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)),
                          (view.x0, view.y0), view.downsample, outline_pen(BAND_RGB, 1.5, Qt.PenStyle.DashLine),
                          fill_brush(SELECTED_RGB, 30))
            return
        shapes = []
        if self._handle is not None and self._reshaped is not None:
            shapes = [(self._handle[0], self._reshaped)]
        elif self._moving and self._offset != (0.0, 0.0):
            shapes = [(a, moved(a, *self._offset)) for a in self._moving]
        for ann, geometry in shapes:
            rgb = ann.display_color(self.ctl.class_colors())
            draw_geometry(painter, geometry, (view.x0, view.y0), view.downsample,
                          outline_pen(SELECTED_RGB, 2.5), fill_brush(rgb) if ann.is_area else None)
            if len(shapes) == 1:
                b = geometry.bounds
                paint_label(painter, view, (b[2], b[3]), measurement_text(ann.with_(geometry=geometry), self.ctl.mpp))
