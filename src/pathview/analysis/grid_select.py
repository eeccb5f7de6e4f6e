"""Which tiles the analysis looks at: tissue, plus pen ink that lies beside it, plus what could not be seen.

The tissue mask leaves pen ink out on purpose (ink is not tissue), but QC must see the
ink to report it, so tiles are kept where either tissue or ink reaches ``min_tissue``;
each tile's recorded ``tissue`` fraction stays the tissue alone. Areas the overview could
not decode are tried as well: their tiles are either read or reported as unreadable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..slide import Slide, TileGrid, TissueMask, detect_tissue, tile_grid
from ..slide.grid import tissue_fractions, unreadable_fractions
from ..slide.tissue import ink_mask


@dataclass(frozen=True)
class GridSelection:
    """The tiles to analyse and the slide's tissue area."""

    grid: TileGrid
    tissue_mm2: float


def analysis_grid(slide: Slide, thumbnail: Image.Image, tile_mpp: float, tile_size: int,
                  min_tissue: float) -> GridSelection:
    """Return the tiles of ``tile_size`` px at ``tile_mpp`` (never finer than the scan) with tissue or ink.

    A slide scanned coarser than ``tile_mpp`` is tiled at its own pixel size: finer tiles
    would only be its pixels enlarged.
    """
    level0_mpp = slide.require_mpp()
    mpp = max(float(tile_mpp), level0_mpp)
    mask = detect_tissue(slide)
    full = tile_grid(slide, mpp=mpp, size=tile_size, mask=mask, min_tissue=0.0)
    w, h = slide.dimensions
    tw, th = thumbnail.size
    ink = TissueMask(ink_mask(np.asarray(thumbnail.convert("RGB"))), w / tw, h / th)
    inked = tissue_fractions(ink, full.coords, full.patch_size_level0)
    unseen = unreadable_fractions(mask, full.coords, full.patch_size_level0)
    keep = (full.tissue >= min_tissue) | (inked >= max(min_tissue, 0.05)) | (unseen >= max(min_tissue, 0.05))
    return GridSelection(full.subset(keep), mask.area_mm2(level0_mpp))
