"""Render a field of view to pixels from display tiles, as the window paints it (no Qt).

The window and ``pathview render`` share the tile choice (:mod:`pathview.viewport`)
and the tile source; this module composes the exact tiles into an RGB array.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import MissingMppError
from .tiles import TileSource
from .viewport import Viewport, display_level, downsample_for, tile_rect_level0, visible_tiles


def compose(source: TileSource, view: Viewport) -> np.ndarray:
    """Return the RGB screen (height, width, 3) for ``view``; outside the slide is white glass."""
    slide = source.slide
    out = Image.new("RGB", (view.width, view.height), (255, 255, 255))
    level = display_level(slide.level_downsamples, view.downsample)
    d = slide.level_downsamples[level]
    size = source.level_size(level)
    for key in visible_tiles(view, level, d, size):
        x, y, w, h = tile_rect_level0(key, d, size)
        sx0, sy0 = view.to_screen(x, y)
        sx1, sy1 = view.to_screen(x + w, y + h)
        # Whole screen pixels this tile covers; sample the tile over exactly that span.
        # Neighbouring tiles meet at the same rounded pixel, so there are no seams.
        px0, py0 = max(0, round(sx0)), max(0, round(sy0))
        px1, py1 = min(view.width, round(sx1)), min(view.height, round(sy1))
        if px1 <= px0 or py1 <= py0:
            continue
        tile = source.load(key)
        th, tw = tile.shape[:2]
        fx, fy = tw / (sx1 - sx0), th / (sy1 - sy0)
        box = (min(max((px0 - sx0) * fx, 0.0), tw), min(max((py0 - sy0) * fy, 0.0), th),
               min(max((px1 - sx0) * fx, 0.0), tw), min(max((py1 - sy0) * fy, 0.0), th))
        patch = Image.fromarray(tile).resize((px1 - px0, py1 - py0), Image.Resampling.BILINEAR, box=box)
        out.paste(patch, (px0, py0))
    return np.asarray(out)


def render_view(source: TileSource, center: tuple[float, float], magnification: float,
                size: tuple[int, int]) -> np.ndarray:
    """Return the view of ``size`` (w, h) centred on level-0 ``center`` at ``magnification``."""
    info = source.slide.info
    if info.mpp is None and info.objective_power is None:  # a magnification would be a guess
        raise MissingMppError(source.slide.path)
    ds = downsample_for(magnification, info.mpp, info.objective_power)
    return compose(source, Viewport(center[0], center[1], ds, size[0], size[1]))
