"""heatmap.png: tile scores in colour over the slide's thumbnail, on tissue tiles only.

Also the pieces the viewer's overlay reuses: :func:`score_lattice` (one value per tile
cell, NaN off tissue) and :func:`lookup_table` / :func:`colorize` (the colour maps).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .regions import CLASS_COLORS, Region

#: Colour maps as anchor colours from score 0 to 1, interpolated linearly.
COLORMAPS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "heat": ((40, 40, 150), (40, 150, 220), (120, 210, 120), (250, 220, 60), (240, 120, 30), (200, 20, 30)),
    "gray": ((0, 0, 0), (255, 255, 255)),
}


def lookup_table(name: str = "heat", n: int = 256) -> np.ndarray:
    """Return an (n, 3) uint8 colour table for the map ``name``."""
    anchors = np.asarray(COLORMAPS[name], np.float64)
    pos = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(t, pos, anchors[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def colorize(values: np.ndarray, cmap: str = "heat") -> np.ndarray:
    """Return RGB uint8 colours for ``values`` in [0, 1] (NaN gets black; mask it yourself)."""
    lut = lookup_table(cmap)
    idx = np.nan_to_num(np.clip(values, 0.0, 1.0), nan=0.0) * (len(lut) - 1)
    return lut[idx.round().astype(np.int64)]


def score_lattice(coords: np.ndarray, patch_size_level0: int, values: np.ndarray,
                  dimensions: tuple[int, int]) -> np.ndarray:
    """Return a (rows, cols) float32 array of tile values on the tile lattice; NaN where no tile was scored."""
    w, h = dimensions
    cols, rows = -(-w // patch_size_level0), -(-h // patch_size_level0)
    lattice = np.full((rows, cols), np.nan, np.float32)
    cells = coords // patch_size_level0
    lattice[cells[:, 1], cells[:, 0]] = values
    return lattice


def lattice_to_image(lattice: np.ndarray, patch_size_level0: int, dimensions: tuple[int, int],
                     size: tuple[int, int]) -> np.ndarray:
    """Sample the lattice at every pixel of an image of ``size`` (w, h) covering the whole slide."""
    w, h = dimensions
    ow, oh = size
    cx = np.minimum((np.arange(ow) + 0.5) * w / ow // patch_size_level0, lattice.shape[1] - 1).astype(np.int64)
    cy = np.minimum((np.arange(oh) + 0.5) * h / oh // patch_size_level0, lattice.shape[0] - 1).astype(np.int64)
    return lattice[cy[:, None], cx[None, :]]


def heatmap_picture(thumbnail: Image.Image, coords: np.ndarray, patch_size_level0: int, values: np.ndarray,
                    dimensions: tuple[int, int], regions: list[Region] | None = None, *, top: int = 10,
                    opacity: float = 0.55, cmap: str = "heat") -> Image.Image:
    """Return ``thumbnail`` with ``values`` blended over the scored tiles and the top regions outlined."""
    base = np.asarray(thumbnail.convert("RGB")).astype(np.float32)
    field = lattice_to_image(score_lattice(coords, patch_size_level0, values, dimensions), patch_size_level0,
                             dimensions, thumbnail.size)
    on = ~np.isnan(field)
    colour = colorize(field, cmap).astype(np.float32)
    # Low scores stay faint so the tissue shows through; high scores are nearly opaque.
    alpha = np.where(on, opacity * (0.35 + 0.65 * np.nan_to_num(np.clip(field, 0, 1))), 0.0)[..., None]
    out = Image.fromarray((base * (1 - alpha) + colour * alpha).round().astype(np.uint8))
    if regions:
        _outline(out, regions[:top], dimensions)
    return out


def _outline(img: Image.Image, regions: list[Region], dimensions: tuple[int, int]) -> None:
    """Draw each region's outline in its class colour and its rank beside it."""
    draw = ImageDraw.Draw(img)
    sx, sy = img.size[0] / dimensions[0], img.size[1] / dimensions[1]
    for r in regions:
        geoms = getattr(r.geometry, "geoms", [r.geometry])
        colour = CLASS_COLORS[r.cls]
        for g in geoms:
            pts = [(x * sx, y * sy) for x, y in g.exterior.coords]
            draw.line(pts, fill=(255, 255, 255), width=4)
            draw.line(pts, fill=colour, width=2)
        x0, y0, _, _ = r.geometry.bounds
        label = str(r.rank)
        tx, ty = max(0, x0 * sx - 2), max(0, y0 * sy - 14)
        draw.rectangle([tx, ty, tx + 7 * len(label) + 4, ty + 12], fill=(255, 255, 255))
        draw.text((tx + 2, ty), label, fill=colour)
