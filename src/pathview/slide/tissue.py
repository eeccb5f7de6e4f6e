"""Tissue detection at low resolution: fast, robust to background noise and pen ink.

Works on an overview at about 8 µm/px (HistoQC's habit of judging at low power).
Tissue is coloured (stained) or darker than the glass; pen ink is excluded by hue
(green, blue and black inks lie outside the pink-purple H&E range); dust and noise
are removed by size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .reader import Slide

#: Resolution of the tissue mask where the slide's mpp is known.
MASK_MPP = 8.0
#: Longest side of the mask where it is not.
MASK_MAX_SIDE = 2048
#: Smallest piece of tissue kept, in mask pixels' level-0 area: 0.02 mm² at 8 µm/px is ~300 px.
MIN_PIECE_UM2 = 20_000.0


@dataclass(frozen=True)
class TissueMask:
    """A boolean tissue mask; mask pixel (r, c) covers level-0 x in [c*scale_x, (c+1)*scale_x).

    ``unreadable`` (same shape, or None) marks where the overview could not be decoded:
    whether tissue lies there is unknown, so tile grids try those places too.
    """

    mask: np.ndarray
    scale_x: float
    scale_y: float
    unreadable: np.ndarray | None = None

    def fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0

    def area_mm2(self, mpp: float) -> float:
        """Return the tissue area in mm² for a level-0 pixel size of ``mpp`` µm."""
        return float(self.mask.sum()) * self.scale_x * self.scale_y * mpp * mpp / 1e6


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return hue in degrees, saturation and value in [0, 1]."""
    f = rgb.astype(np.float32) / 255.0
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    mx = f.max(axis=-1)
    mn = f.min(axis=-1)
    delta = mx - mn
    sat = np.where(mx > 0, delta / np.maximum(mx, 1e-6), 0.0)
    d = np.maximum(delta, 1e-6)
    hue = np.where(
        mx == r, ((g - b) / d) % 6.0, np.where(mx == g, (b - r) / d + 2.0, (r - g) / d + 4.0)
    ) * 60.0
    return hue, sat, mx


def _otsu(values: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(values)) if values.size and values.min() < values.max() else 1.0


def ink_mask(rgb: np.ndarray) -> np.ndarray:
    """Return where an overview shows pen ink (green, blue, black) rather than H&E stain."""
    hue, sat, val = _hsv(rgb)
    coloured_ink = (sat > 0.25) & (hue > 60) & (hue < 235)
    black_ink = (val < 0.2) & (sat < 0.35)
    return coloured_ink | black_ink


def tissue_from_rgb(rgb: np.ndarray, pixel_um: float | None = None) -> np.ndarray:
    """Return a boolean tissue mask for an RGB overview whose pixels are ``pixel_um`` wide."""
    from scipy import ndimage  # imported here: reader processes load this module and start faster without it
    _, sat, val = _hsv(rgb)
    sat = ndimage.median_filter(sat, size=3)
    val = ndimage.median_filter(val, size=3)
    # Stained tissue is saturated; Otsu separates it from glass, floored so an empty or
    # faint slide does not turn noise into tissue.
    sat_t = max(_otsu(sat), 0.07)
    tissue = (sat > sat_t) | ((val < 0.82) & (val > 0.2))
    tissue &= ~ink_mask(rgb)
    tissue = ndimage.binary_closing(tissue, structure=np.ones((3, 3)), iterations=2)
    tissue = ndimage.binary_fill_holes(tissue)
    tissue = ndimage.binary_opening(tissue, structure=np.ones((3, 3)))
    min_px = MIN_PIECE_UM2 / (pixel_um * pixel_um) if pixel_um else tissue.size * 1e-4
    labels, n = ndimage.label(tissue)
    if n:
        sizes = np.bincount(labels.ravel())
        keep = sizes >= max(min_px, 4)
        keep[0] = False
        tissue = keep[labels]
    return tissue


def detect_tissue(slide: Slide) -> TissueMask:
    """Return the tissue mask of a slide, computed on a low-resolution overview."""
    w, h = slide.dimensions
    if slide.mpp is not None:
        scale = MASK_MPP / slide.mpp
        if max(w, h) / scale > MASK_MAX_SIDE * 2:
            scale = max(w, h) / (MASK_MAX_SIDE * 2)
    else:
        scale = max(w, h) / MASK_MAX_SIDE
    scale = max(scale, 1.0)
    mw, mh = max(1, round(w / scale)), max(1, round(h / scale))
    rgb, damaged = slide.overview_and_damage((mw, mh))
    pixel_um = slide.mpp * w / mw if slide.mpp is not None else None
    return TissueMask(tissue_from_rgb(rgb, pixel_um), w / mw, h / mh, damaged if damaged.any() else None)
