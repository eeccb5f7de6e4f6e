"""The slide canvas: paints display tiles, never blank, and handles the navigation pathologists know.

Painting order per frame: the always-resident thumbnail under everything, then any
cached tiles of coarser levels, then the exact level's cached tiles. Missing exact tiles
are requested from the background loader (nearest the centre first, one tile of
prefetch around the view); the frame is repainted as they arrive.

Other features plug in without editing this file: ``add_layer`` adds something painted
over the tiles (annotations, a heatmap), and ``set_tool`` installs a tool that sees mouse
and key events first (drawing, selecting); see ``layers.py``.
"""

from __future__ import annotations

import math
import time

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ..slide.reader import Slide
from ..tiles import TileSource
from ..viewport import (
    PRESETS,
    Viewport,
    display_level,
    downsample_for,
    fit_viewport,
    magnification_of,
    tile_rect_level0,
    visible_tiles,
)
from .layers import ViewLayer, ViewTool
from .qimage import to_qimage
from .tile_loader import TileLoader

WHEEL_STEP = 2 ** 0.25  # one wheel notch zooms by a quarter stop: smooth, not jumpy
PAN_FRACTION = 0.25
ZOOM_FRAME_MS = 15  # wheel zoom glides to its target in a few frames instead of jumping
ZOOM_GLIDE = 0.45  # fraction of the remaining zoom (in log scale) covered per frame


class SlideView(QWidget):
    """Shows one slide; emits ``view_changed`` and ``cursor_moved`` (level-0 x, y)."""

    view_changed = Signal(object)
    cursor_moved = Signal(float, float)

    def __init__(self, slide: Slide, cache_bytes: int = 512 * 1024 * 1024, parent: QWidget | None = None,
                 start: Viewport | None = None) -> None:
        """``start``: the field to show (a view taking over from another keeps it); None fits the slide."""
        super().__init__(parent)
        self.slide = slide
        self.source = TileSource(slide, cache_bytes)
        self.loader = TileLoader(self.source)
        self.loader.tile_ready.connect(self._on_tile_ready)
        thumb = np.asarray(slide.thumbnail(1024))
        self._thumb = thumb
        self._thumb_image = to_qimage(thumb)
        self.view = start or fit_viewport(slide.dimensions, 800, 600)
        self._fitted = start is not None
        self._drag: QPointF | None = None
        self.frame_times: list[float] = []
        self.last_exact_missing = 0
        self.layers: list[ViewLayer] = []
        self.tool: ViewTool | None = None
        self._zoom_target: float | None = None  # downsample the wheel glide is heading for
        self._zoom_anchor: tuple[float, float] | None = None
        self._zoom_timer = QTimer(self)
        self._zoom_timer.setInterval(ZOOM_FRAME_MS)
        self._zoom_timer.timeout.connect(self._glide)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)
        self.setMinimumSize(200, 150)

    # -- view state ---------------------------------------------------------------------------
    @property
    def magnification(self) -> float:
        info = self.slide.info
        return magnification_of(self.view.downsample / self.devicePixelRatioF(), info.mpp, info.objective_power)

    def set_view(self, view: Viewport) -> None:
        w, h = self.slide.dimensions
        cx = min(max(view.cx, 0.0), float(w))
        cy = min(max(view.cy, 0.0), float(h))
        self.view = Viewport(cx, cy, view.downsample, view.width, view.height)
        self._request_tiles()
        self.update()
        self.view_changed.emit(self.view)

    def center_on(self, x: float, y: float) -> None:
        self.set_view(Viewport(x, y, self.view.downsample, self.view.width, self.view.height))

    def zoom_to_fit(self) -> None:
        self.set_view(fit_viewport(self.slide.dimensions, self.view.width, self.view.height))

    def set_magnification(self, magnification: float) -> None:
        info = self.slide.info
        ds = downsample_for(magnification, info.mpp, info.objective_power) * self.devicePixelRatioF()
        self.set_view(Viewport(self.view.cx, self.view.cy, ds, self.view.width, self.view.height))

    def zoom(self, factor: float, anchor: tuple[float, float] | None = None) -> None:
        fit = fit_viewport(self.slide.dimensions, self.view.width, self.view.height).downsample
        self.set_view(self.view.zoomed(factor, anchor, limits=(0.1, fit * 4)))

    def add_layer(self, layer: ViewLayer) -> None:
        """Paint ``layer`` over the tiles, above the layers added before it."""
        self.layers.append(layer)
        self.update()

    def remove_layer(self, layer: ViewLayer) -> None:
        if layer in self.layers:
            self.layers.remove(layer)
            self.update()

    def set_tool(self, tool: ViewTool | None) -> None:
        """Let ``tool`` see input first; ``None`` returns to plain navigation."""
        self.tool = tool
        self.unsetCursor()
        self.update()

    def is_complete(self) -> bool:
        """Return True when every tile of the current view is decoded at the exact level."""
        return not self._missing_exact()

    # -- tiles --------------------------------------------------------------------------------
    def _level(self) -> int:
        return display_level(self.slide.level_downsamples, self.view.downsample)

    def _missing_exact(self) -> list:
        level = self._level()
        d = self.slide.level_downsamples[level]
        keys = visible_tiles(self.view, level, d, self.slide.level_dimensions[level])
        return [k for k in keys if self.source.cached(k) is None]

    def _request_tiles(self) -> None:
        level = self._level()
        d = self.slide.level_downsamples[level]
        size = self.slide.level_dimensions[level]
        wanted = visible_tiles(self.view, level, d, size)
        seen = set(wanted)
        ring = [k for k in visible_tiles(self.view, level, d, size, margin=1) if k not in seen]
        coarser = []
        if level + 1 < self.slide.level_count:  # a sharp-enough fallback for the next zoom-out
            cd = self.slide.level_downsamples[level + 1]
            coarser = visible_tiles(self.view, level + 1, cd, self.slide.level_dimensions[level + 1])
        self.loader.request(wanted + coarser + ring)

    def _on_tile_ready(self, key) -> None:
        self.update()

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        start = time.perf_counter()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.fillRect(self.rect(), QColor(255, 255, 255))
        dpr = self.devicePixelRatioF()
        painter.scale(1 / dpr, 1 / dpr)  # draw in device pixels: sharp on HiDPI screens
        self._paint_thumbnail(painter)
        level = self._level()
        for lv in range(self.slide.level_count - 1, level - 1, -1):
            self._paint_level(painter, lv, exact=(lv == level))
        for layer in self.layers:
            if layer.visible:
                layer.paint(painter, self.view)
        painter.scale(dpr, dpr)
        self._paint_scale_bar(painter)
        painter.end()
        self.frame_times.append(time.perf_counter() - start)

    def _paint_thumbnail(self, painter: QPainter) -> None:
        w, h = self.slide.dimensions
        x0, y0 = self.view.to_screen(0, 0)
        x1, y1 = self.view.to_screen(w, h)
        painter.drawImage(QRectF(x0, y0, x1 - x0, y1 - y0), self._thumb_image)

    def _paint_level(self, painter: QPainter, level: int, exact: bool) -> None:
        d = self.slide.level_downsamples[level]
        size = self.slide.level_dimensions[level]
        keys = visible_tiles(self.view, level, d, size)
        missing = 0
        for key in keys:
            tile = self.source.cached(key)
            if tile is None:
                missing += 1
                continue
            x, y, tw, th = tile_rect_level0(key, d, size)
            sx0, sy0 = self.view.to_screen(x, y)
            sx1, sy1 = self.view.to_screen(x + tw, y + th)
            # Round edges to whole device pixels so neighbouring tiles meet without seams.
            target = QRectF(round(sx0), round(sy0), round(sx1) - round(sx0), round(sy1) - round(sy0))
            painter.drawImage(target, to_qimage(tile))
        if exact:
            self.last_exact_missing = missing

    def scale_bar(self) -> tuple[float, str]:
        """Return the scale bar's length (logical pixels) and label: a round µm or mm length, px without an mpp."""
        mpp = self.slide.mpp
        um_per_px = (mpp * self.view.downsample / self.devicePixelRatioF()) if mpp else None
        target_px = 120
        if not um_per_px:
            return target_px, f"{target_px * self.view.downsample / self.devicePixelRatioF():.0f} px"
        raw = um_per_px * target_px
        nice = 10 ** math.floor(math.log10(raw))
        for m in (1, 2, 5, 10):
            if nice * m >= raw * 0.6:
                nice *= m
                break
        return nice / um_per_px, f"{nice / 1000:g} mm" if nice >= 1000 else f"{nice:g} µm"

    def _paint_scale_bar(self, painter: QPainter) -> None:
        length_px, label = self.scale_bar()
        x, y = 16, self.height() - 20
        painter.setPen(Qt.PenStyle.NoPen)  # a pale plate keeps bar and label readable over dark tissue
        painter.setBrush(QColor(255, 255, 255, 190))
        painter.drawRoundedRect(QRectF(x - 6, y - 24, max(length_px, 150) + 12, 32), 4, 4)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(0, 0, 0), 4))
        painter.drawLine(QPointF(x, y), QPointF(x + length_px, y))
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawLine(QPointF(x, y), QPointF(x + length_px, y))
        font = QFont()
        font.setPointSize(9)
        painter.setFont(font)
        painter.setPen(QColor(0, 0, 0))
        painter.drawText(QPointF(x, y - 8), f"{label}   {self.magnification:.3g}x")

    # -- input --------------------------------------------------------------------------------
    def _device(self, pos: QPointF) -> tuple[float, float]:
        dpr = self.devicePixelRatioF()
        return pos.x() * dpr, pos.y() * dpr

    def resizeEvent(self, event) -> None:
        dpr = self.devicePixelRatioF()
        w, h = max(1, round(self.width() * dpr)), max(1, round(self.height() * dpr))
        if not self._fitted:
            self._fitted = True
            self.set_view(fit_viewport(self.slide.dimensions, w, h))
        else:
            self.set_view(self.view.resized(w, h))

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.glide_zoom(WHEEL_STEP ** steps, anchor=self._device(event.position()))

    def glide_zoom(self, factor: float, anchor: tuple[float, float]) -> None:
        """Zoom by ``factor`` about ``anchor`` over a few frames; further notches extend the target."""
        start = self._zoom_target if self._zoom_target is not None else self.view.downsample
        self._zoom_target = start / factor
        self._zoom_anchor = anchor
        if not self._zoom_timer.isActive():
            self._zoom_timer.start()

    def is_gliding(self) -> bool:
        return self._zoom_timer.isActive()

    def _glide(self) -> None:
        if self._zoom_target is None:
            self._zoom_timer.stop()
            return
        remaining = self.view.downsample / self._zoom_target
        if abs(math.log(remaining)) < 0.01:
            step, done = remaining, True
        else:
            step, done = remaining ** ZOOM_GLIDE, False
        before = self.view.downsample
        self.zoom(step, anchor=self._zoom_anchor)
        if done or self.view.downsample == before:  # arrived, or stopped at a zoom limit
            self._zoom_target = None
            self._zoom_timer.stop()

    def level0_at(self, pos: QPointF) -> tuple[float, float]:
        """Return the level-0 point under a widget position (logical pixels)."""
        return self.view.to_level0(*self._device(pos))

    def _tool_takes(self, name: str, event) -> bool:
        handler = getattr(self.tool, name, None) if self.tool is not None else None
        return bool(handler and handler(self, event))

    def mousePressEvent(self, event) -> None:
        if self._tool_takes("mouse_press", event):
            return
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:
        x, y = self.view.to_level0(*self._device(event.position()))
        self.cursor_moved.emit(x, y)
        if self._drag is None and self._tool_takes("mouse_move", event):
            return
        if self._drag is not None:
            delta = event.position() - self._drag
            self._drag = event.position()
            dpr = self.devicePixelRatioF()
            self.set_view(self.view.panned(-delta.x() * dpr, -delta.y() * dpr))

    def mouseReleaseEvent(self, event) -> None:
        if self._drag is None and self._tool_takes("mouse_release", event):
            return
        self._drag = None
        self.unsetCursor()

    def mouseDoubleClickEvent(self, event) -> None:
        if self._tool_takes("mouse_double_click", event):
            return
        factor = 0.5 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 2.0
        self.zoom(factor, anchor=self._device(event.position()))

    def keyPressEvent(self, event) -> None:
        if self._tool_takes("key_press", event):
            return
        key, w, h = event.key(), self.view.width, self.view.height
        pans = {Qt.Key.Key_Left: (-w, 0), Qt.Key.Key_Right: (w, 0), Qt.Key.Key_Up: (0, -h), Qt.Key.Key_Down: (0, h)}
        shift = event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        if key in pans and not shift:
            dx, dy = pans[key]
            self.set_view(self.view.panned(dx * PAN_FRACTION, dy * PAN_FRACTION))
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal) or (shift and key == Qt.Key.Key_Up):
            self.zoom(2.0)
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore) or (shift and key == Qt.Key.Key_Down):
            self.zoom(0.5)
        elif Qt.Key.Key_1 <= key <= Qt.Key.Key_6:
            self.set_magnification(PRESETS[key - Qt.Key.Key_1])
        elif key == Qt.Key.Key_0:
            self.zoom_to_fit()
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event) -> None:
        self.loader.stop()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the loader threads (the window calls this when the slide closes)."""
        self.loader.stop()
