"""Pictures of core results over a slide overview (tissue mask, tile grid); no Qt."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .grid import TileGrid
from .reader import Slide
from .tissue import TissueMask


def grid_picture(slide: Slide, grid: TileGrid, mask: TissueMask, max_size: int = 1600) -> Image.Image:
    """Return the overview with the tissue mask tinted green and the kept tiles outlined."""
    thumb = slide.thumbnail(max_size)
    rgb = np.asarray(thumb).astype(np.float32)
    m = np.asarray(Image.fromarray(mask.mask.astype(np.uint8) * 255).resize(thumb.size, Image.Resampling.NEAREST)) > 0
    rgb[m] = rgb[m] * 0.85 + np.array([40, 200, 80], np.float32) * 0.15
    out = Image.fromarray(rgb.astype(np.uint8))
    draw = ImageDraw.Draw(out)
    sx = thumb.size[0] / slide.dimensions[0]
    sy = thumb.size[1] / slide.dimensions[1]
    ps = grid.patch_size_level0
    for x, y in grid.coords:
        draw.rectangle([x * sx, y * sy, (x + ps) * sx, (y + ps) * sy], outline=(30, 60, 200))
    return out
