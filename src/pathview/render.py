"""Render a field of view to pixels, as the viewer's screen shows it (no Qt)."""

from __future__ import annotations

import numpy as np

from .slide.reader import Slide

#: Objective power whose field shows one level-0 pixel per screen pixel, per µm/px.
REFERENCE_MPP_AT_10X = 1.0


def screen_mpp(magnification: float) -> float:
    """Return the µm per screen pixel at an objective-style magnification (20x = 0.5 µm/px)."""
    return 10.0 / magnification


def render_view(slide: Slide, center: tuple[float, float], magnification: float,
                size: tuple[int, int]) -> np.ndarray:
    """Return the RGB view of ``size`` (w, h) centred on level-0 ``center`` at ``magnification``.

    Slides without an mpp use magnification relative to level 0 (level 0 = its recorded
    objective, or 1 screen px per level-0 px at 40x when nothing is known).
    """
    downsample = level0_per_screen_px(slide, magnification)
    w, h = size
    x0 = center[0] - w * downsample / 2
    y0 = center[1] - h * downsample / 2
    return read_view(slide, x0, y0, downsample, size)


def level0_per_screen_px(slide: Slide, magnification: float) -> float:
    """Return how many level-0 pixels one screen pixel spans at ``magnification``."""
    if slide.mpp is not None:
        return screen_mpp(magnification) / slide.mpp
    native = slide.info.objective_power or 40.0
    return native / magnification


def read_view(slide: Slide, x0: float, y0: float, downsample: float, size: tuple[int, int]) -> np.ndarray:
    """Return ``size`` screen pixels whose top-left is level-0 (x0, y0), ``downsample`` px each.

    Areas outside the slide are drawn white, as glass.
    """
    w, h = size
    out = np.full((h, w, 3), 255, np.uint8)
    sw, sh = slide.dimensions
    # Clip to the slide, in screen pixels.
    left = max(0, int(np.ceil(-x0 / downsample)))
    top = max(0, int(np.ceil(-y0 / downsample)))
    right = min(w, int((sw - x0) / downsample))
    bottom = min(h, int((sh - y0) / downsample))
    if right <= left or bottom <= top:
        return out
    bx = int(round(x0 + left * downsample))
    by = int(round(y0 + top * downsample))
    bw = max(1, int(round((right - left) * downsample)))
    bh = max(1, int(round((bottom - top) * downsample)))
    out[top:bottom, left:right] = slide.read_scaled((bx, by, bw, bh), (right - left, bottom - top))
    return out
