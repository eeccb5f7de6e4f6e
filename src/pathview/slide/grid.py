"""A grid of square tiles at a target mpp, with each tile's tissue fraction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .reader import Slide
from .tissue import TissueMask


@dataclass(frozen=True)
class TileGrid:
    """Tiles of ``patch_size`` px at ``mpp``; each covers ``patch_size_level0`` level-0 px.

    ``coords`` are level-0 top-left corners (N, 2) int64 on a regular lattice from the
    origin, in the order CLAM/TRIDENT feature files use (x, y).
    """

    coords: np.ndarray
    tissue: np.ndarray
    patch_size: int
    patch_size_level0: int
    mpp: float
    level0_mpp: float

    def __len__(self) -> int:
        return len(self.coords)

    def subset(self, keep: np.ndarray) -> TileGrid:
        return TileGrid(self.coords[keep], self.tissue[keep], self.patch_size,
                        self.patch_size_level0, self.mpp, self.level0_mpp)


def tissue_fractions(mask: TissueMask, coords: np.ndarray, size_level0: int) -> np.ndarray:
    """Return the tissue fraction of each level-0 square tile, in O(1) per tile (integral image)."""
    return _fractions(mask.mask, mask, coords, size_level0)


def unreadable_fractions(mask: TissueMask, coords: np.ndarray, size_level0: int) -> np.ndarray:
    """Return the fraction of each tile whose overview could not be decoded (zeros when all could)."""
    if mask.unreadable is None:
        return np.zeros(len(coords), np.float32)
    return _fractions(mask.unreadable, mask, coords, size_level0)


def _fractions(m: np.ndarray, mask: TissueMask, coords: np.ndarray, size_level0: int) -> np.ndarray:
    integral = np.zeros((m.shape[0] + 1, m.shape[1] + 1), dtype=np.int64)
    integral[1:, 1:] = m.cumsum(0).cumsum(1)
    x0 = np.clip(np.floor(coords[:, 0] / mask.scale_x), 0, m.shape[1]).astype(np.int64)
    y0 = np.clip(np.floor(coords[:, 1] / mask.scale_y), 0, m.shape[0]).astype(np.int64)
    x1 = np.clip(np.ceil((coords[:, 0] + size_level0) / mask.scale_x), 0, m.shape[1]).astype(np.int64)
    y1 = np.clip(np.ceil((coords[:, 1] + size_level0) / mask.scale_y), 0, m.shape[0]).astype(np.int64)
    inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    area = np.maximum((x1 - x0) * (y1 - y0), 1)
    return (inside / area).astype(np.float32)


def tile_grid(
    slide: Slide,
    mpp: float = 0.5,
    size: int = 224,
    mask: TissueMask | None = None,
    min_tissue: float = 0.1,
) -> TileGrid:
    """Return the tiles of ``size`` px at ``mpp`` whose tissue fraction is at least ``min_tissue``.

    Pass ``mask`` to reuse a tissue mask; with ``min_tissue=0`` every tile is kept. Tiles
    as much in an area the overview could not decode are kept too (their recorded tissue
    fraction is what could be seen): reading them says whether they are damaged.
    """
    from .tissue import detect_tissue

    level0_mpp = slide.require_mpp()
    size_level0 = max(1, round(size * mpp / level0_mpp))
    w, h = slide.dimensions
    xs = np.arange(0, w, size_level0, dtype=np.int64)
    ys = np.arange(0, h, size_level0, dtype=np.int64)
    gx, gy = np.meshgrid(xs, ys)
    coords = np.stack([gx.ravel(), gy.ravel()], axis=1)
    if mask is None:
        mask = detect_tissue(slide)
    fractions = tissue_fractions(mask, coords, size_level0)
    if min_tissue > 0:
        keep = (fractions >= min_tissue) | (unreadable_fractions(mask, coords, size_level0) >= min_tissue)
    else:
        keep = np.ones(len(coords), bool)
    return TileGrid(coords[keep], fractions[keep], size, size_level0, mpp, level0_mpp)
