"""The heatmap overlay: per-tile scores as translucent colour squares aligned to the analysis tile grid.

Fast by construction: the scores become a tiny RGBA image with one pixel per tile cell,
rebuilt only when a setting changes; each frame draws just the visible cells of it,
scaled without smoothing so every tile stays a crisp square on the slide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter

from ..analysis.heatmap import lookup_table, score_lattice
from ..viewport import Viewport
from .analysis_result import LAYERS, AnalysisResult

#: Colour maps offered in the Heatmap panel; "heat" is the one heatmap.png uses.
COLORMAPS: tuple[str, ...] = ("heat", "inferno", "viridis", "jet")
FLOOR_ALPHA = 0.4  # share of the opacity a tile exactly at the threshold gets


@dataclass(frozen=True)
class HeatmapSettings:
    """What the overlay shows: tiles whose best enabled score reaches ``threshold``, coloured by that score."""

    opacity: float = 0.45
    cmap: str = "heat"
    threshold: float = 0.5  # the analysis' own decision threshold: only what it flags, at first
    layers: frozenset[str] = field(default_factory=lambda: frozenset(LAYERS))


def colour_table(name: str) -> np.ndarray:
    """Return a (256, 3) uint8 colour table for score 0 to 1."""
    if name == "heat":
        return lookup_table("heat", 256)
    from cmap import Colormap

    return (Colormap(name).lut(256)[:, :3] * 255).round().astype(np.uint8)


def overlay_pixels(result: AnalysisResult, dimensions: tuple[int, int], settings: HeatmapSettings) -> np.ndarray:
    """Return the (rows, cols, 4) RGBA lattice image: transparent where no enabled score reaches the threshold."""
    ps0 = result.patch_size_level0
    enabled = [result.scores[name] for name in LAYERS if name in settings.layers and name in result.scores]
    cols, rows = -(-dimensions[0] // ps0), -(-dimensions[1] // ps0)
    rgba = np.zeros((rows, cols, 4), np.uint8)
    if not enabled or not len(result.coords):
        return rgba
    best = np.max(np.stack(enabled, 1), 1)
    lattice = score_lattice(result.coords, ps0, best, dimensions)
    shown = np.nan_to_num(lattice, nan=-1.0) >= settings.threshold
    idx = (np.clip(np.nan_to_num(lattice, nan=0.0), 0.0, 1.0) * 255).round().astype(np.int64)
    rgba[..., :3] = colour_table(settings.cmap)[idx]
    # Tiles just over the threshold are fainter than clear outliers: the eye goes to the strongest first.
    above = np.nan_to_num(lattice, nan=0.0) - settings.threshold
    strength = np.clip(above / max(1e-6, 1.0 - settings.threshold), 0.0, 1.0)
    alpha = 255 * settings.opacity * (FLOOR_ALPHA + (1 - FLOOR_ALPHA) * strength)
    rgba[..., 3] = np.where(shown, alpha.round(), 0).astype(np.uint8)
    return rgba


class HeatmapLayer:
    """A :class:`~pathview.app.layers.ViewLayer` for one slide's analysis."""

    def __init__(self, dimensions: tuple[int, int]) -> None:
        self.visible = True
        self.dimensions = dimensions
        self.result: AnalysisResult | None = None
        self.settings = HeatmapSettings()
        self.pixels: np.ndarray | None = None
        self._image: QImage | None = None

    def set_result(self, result: AnalysisResult | None) -> None:
        self.result = result
        self._rebuild()

    def set_settings(self, settings: HeatmapSettings) -> None:
        self.settings = settings
        self._rebuild()

    def _rebuild(self) -> None:
        if self.result is None:
            self.pixels, self._image = None, None
            return
        self.pixels = np.ascontiguousarray(overlay_pixels(self.result, self.dimensions, self.settings))
        rows, cols = self.pixels.shape[:2]
        self._image = QImage(self.pixels.data, cols, rows, cols * 4, QImage.Format.Format_RGBA8888)

    def paint(self, painter: QPainter, view: Viewport) -> None:
        if self._image is None or self.result is None:
            return
        ps = self.result.patch_size_level0
        rows, cols = self.pixels.shape[:2]
        # Only the cells on screen, whole cells so the squares keep their edges.
        c0 = max(0, math.floor(view.x0 / ps))
        r0 = max(0, math.floor(view.y0 / ps))
        c1 = min(cols, math.ceil((view.x0 + view.width * view.downsample) / ps))
        r1 = min(rows, math.ceil((view.y0 + view.height * view.downsample) / ps))
        if c1 <= c0 or r1 <= r0:
            return
        sx0, sy0 = view.to_screen(c0 * ps, r0 * ps)
        sx1, sy1 = view.to_screen(c1 * ps, r1 * ps)
        w, h = self.dimensions
        ex, ey = view.to_screen(w, h)
        painter.save()
        painter.setClipRect(QRectF(sx0, sy0, ex - sx0, ey - sy0))  # edge tiles reach past the slide: stop at its edge
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(QRectF(sx0, sy0, sx1 - sx0, sy1 - sy0), self._image, QRectF(c0, r0, c1 - c0, r1 - r0))
        painter.restore()
