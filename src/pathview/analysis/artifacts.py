"""Artifact QC per tile: pen ink, out of focus, tissue fold, air bubble / slide edge, dark debris, exposure.

The classes HistoQC and GrandQC report, judged on the tile pixels the encoder already
read (the slide is not read twice). Two steps, because some judgements need the
whole slide: :func:`tile_measures` reduces each tile to a few numbers while encoding
runs (vectorised over the batch), and :func:`artifact_scores` turns the measures of
all tiles into scores in [0, 1] (0.5 = the decision threshold) at the end.

Each measure is physical and stain-agnostic where it can be: ink is solid colour that
H&E never makes (green to blue hues), a near-black stroke that crosses the tile, or, over
dense tissue where its hue is lost, optical density off the plane the slide's two stains
span, or a band that lets no red light through anywhere across it and is redder in density
than the slide's stains (blue and black ink lie near haematoxylin, but nuclei leave paler
gaps between them, ink leaves none; a fold, the same stains doubled, keeps their ratio); blur is
the loss of fine detail relative to coarse detail (contrast-invariant); a fold
doubles the slide's own typical (eosin) density, over the tile or part of it; bubbles and slide edges are grey
(unstained) matter or tissue whose stain colour is washed out; debris is near-black
particles inside the tile; exposure looks at the darkest and brightest pixels.
Thresholds were set on the real slides in ../shared/data (clean tissue stays below
0.5) and on artifacts injected into them (benchmarks/anomaly_eval.py).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Artifact classes, in the order outputs list them; tiles.h5 stores each as ``qc_<name>``.
ARTIFACT_CLASSES: tuple[str, ...] = ("pen", "blur", "fold", "bubble", "debris", "exposure")
ARTIFACT_TITLES: dict[str, str] = {
    "pen": "Pen ink", "blur": "Out of focus", "fold": "Tissue fold", "bubble": "Air bubble / slide edge",
    "debris": "Dark debris", "exposure": "Over/under exposure",
}
#: Where a fold covers only part of a tile: the fractions of each tile above a ladder of local optical
#: densities; the slide's own typical density picks the rung at the end (two layers of *this* slide's tissue).
FOLD_LADDER: tuple[float, ...] = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0)
#: Unmixes a tile's mean optical density (red, green, blue) into haematoxylin, eosin and the rest
#: (Ruifrok & Johnston's H&E vectors). Only eosin is used: a fold doubles the cytoplasm and stroma
#: in it, while a crowd of nuclei (lymphoid tissue, tumour) is dense in haematoxylin alone.
_HE = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]])
_HE_BASIS = np.stack([*_HE, np.cross(*_HE)])
_UNMIX = np.linalg.inv(_HE_BASIS / np.linalg.norm(_HE_BASIS, axis=1, keepdims=True))
#: Products of optical densities (r, g, b) whose tile means give each tile's colour spread in OD space.
_PAIRS: tuple[str, ...] = ("rr", "gg", "bb", "rg", "rb", "gb")
_PAIR_IDX = (np.array([0, 1, 2, 0, 0, 1]), np.array([0, 1, 2, 1, 2, 2]))
#: Per-tile measures, the columns of :func:`tile_measures`.
MEASURES: tuple[str, ...] = (
    "fg_frac", "ink_frac", "stroke_frac", "band_frac", "band_rg", "dark_frac", "grey_frac", "sharpness", "lum_p10",
    "lum_p90", "fg_od", "fg_sat", "fg_od_red", "fg_od_green", "fg_od_blue", *(f"od2_{c}" for c in _PAIRS),
    *(f"od_gt_{t}" for t in FOLD_LADDER),
)
#: Fold evidence is a tile's density relative to the slide's typical tissue (a fold is two layers, ~2x):
#: its eosin, which may outrun its whole density by at most FOLD_STAIN_SHIFT (more is another stain,
#: e.g. a foreign fragment, not a second layer), or its whole density less an allowance for crowded nuclei.
FOLD_STAIN_SHIFT = 0.3
FOLD_NUCLEI_ALLOWANCE = 1.3
FOLD_LO, FOLD_HI = 1.2, 2.4  # fold score ramp over the relative density: 0.5 at 1.8x the slide's tissue
FOLD_FACTOR = 2.0  # a fold's local density relative to the slide's typical tissue: two layers
PEN_OFF_LO, PEN_OFF_HI = 0.01, 0.06  # pen score ramp over a tile's share of OD off the slide's stain plane
GLASS_OD = 0.25  # summed RGB optical density below which a pixel is bare glass
OPEN_PX = 7  # at half resolution (~7 µm at 0.5 µm/px): wider than a nucleus, so nuclei do not count
#: Ink over tissue: red transmission below BAND_RED at every pixel of a BAND_PX window (half resolution,
#: ~13 µm): blue, black and green inks absorb red; H&E let it through somewhere in any such window
#: (eosin hardly absorbs red, and clustered nuclei leave paler cytoplasm or stroma between them).
BAND_RED = 0.4
BAND_PX = 13
#: Ink raises the band's red:green density ratio above the slide's tissue (blue 1.3, black 1.0, green 2.5
#: against 0.3-0.6 for H&E tissue); a fold keeps the ratio of its stains. Score ramp over the rise.
BAND_RG_LO, BAND_RG_HI = 0.06, 0.12
BAND_LO, BAND_HI = 0.05, 0.15  # score ramp over the tile's share in such a band (a marker stroke is 0.3-1 mm wide)
FOLD_PX = 15  # local fold density is a mean over ~15 µm: across the gaps between cells, not per nucleus


def _half(x: np.ndarray) -> np.ndarray:
    """2x2 block means of (n, H, W, ...) (H, W even)."""
    return 0.25 * (x[:, ::2, ::2] + x[:, 1::2, ::2] + x[:, ::2, 1::2] + x[:, 1::2, 1::2])


def _sharpness(gray: np.ndarray) -> np.ndarray:
    """Return fine-to-coarse detail ratios of (n, H, W) gray tiles: blur lowers it, contrast does not.

    Fine detail is the mean absolute Laplacian; coarse detail the mean absolute
    difference from a 9x9 box mean. Both scale with contrast, their ratio does not.
    """
    lap = np.abs(4 * gray[:, 1:-1, 1:-1] - gray[:, :-2, 1:-1] - gray[:, 2:, 1:-1] - gray[:, 1:-1, :-2]
                 - gray[:, 1:-1, 2:]).mean((1, 2))
    coarse = np.abs(gray - ndimage.uniform_filter(gray, size=(1, 9, 9), mode="reflect")).mean((1, 2))
    return lap / (coarse + 2e-3)


def _open(mask: np.ndarray) -> np.ndarray:
    """Binary opening of each (H, W) plane of ``mask`` by OPEN_PX, only on planes that have any pixel set."""
    out = np.zeros_like(mask)
    some = np.flatnonzero(mask.reshape(len(mask), -1).any(1))
    if len(some):
        out[some] = ndimage.binary_opening(mask[some], structure=np.ones((1, OPEN_PX, OPEN_PX), bool))
    return out


def _green_to_blue(r: np.ndarray, g: np.ndarray, b: np.ndarray, val: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Return where the hue lies between 70° and 230° (green to blue, which H&E never makes), without HSV.

    Green is brightest: hue = 120 + 60 (b - r) / delta > 70. Blue is brightest: hue = 240 + 60 (r - g) / delta < 230.
    """
    g_max = (g >= val) & (b - r > -5.0 / 6.0 * delta)
    b_max = (b >= val) & (g < val) & (r - g < -delta / 6.0)
    return g_max | b_max


def _red_band(red: np.ndarray) -> np.ndarray:
    """Return where (n, H, W) red transmission stays below BAND_RED over a whole BAND_PX window (an opening)."""
    size = (1, BAND_PX, BAND_PX)
    dark = (red < BAND_RED).view(np.uint8)
    return ndimage.maximum_filter(ndimage.minimum_filter(dark, size=size), size=size).astype(bool)


def _strokes(marks: np.ndarray) -> np.ndarray:
    """Return the pixels of (n, H, W) ``marks`` in pieces that cross the tile (touch two of its sides).

    Why: a pen stroke enters and leaves a tile; a particle of debris lies inside it.
    This separates black ink from dark debris, which colour cannot.
    """
    out = np.zeros_like(marks)
    for i in np.flatnonzero(marks.reshape(len(marks), -1).any(1)):
        labels, count = ndimage.label(marks[i])
        if not count:
            continue
        sides = [np.unique(edge) for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1])]
        touches = np.zeros(count + 1, np.int64)
        for found in sides:
            touches[found] += 1
        touches[0] = 0
        out[i] = touches[labels] >= 2
    return out


def tile_measures(tiles: np.ndarray) -> np.ndarray:
    """Return (n, len(MEASURES)) float32 measures of uint8 RGB tiles (n, H, W, 3)."""
    n = len(tiles)
    if n == 0:
        return np.empty((0, len(MEASURES)), np.float32)
    rgb_full = tiles.astype(np.float32) * (1.0 / 255.0)
    gray = rgb_full @ np.array([0.299, 0.587, 0.114], np.float32)
    sharp = _sharpness(gray)
    h, w = tiles.shape[1] // 2 * 2, tiles.shape[2] // 2 * 2
    rgb = _half(rgb_full[:, :h, :w])
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    val = rgb.max(-1)
    delta = val - rgb.min(-1)
    sat = delta / np.maximum(val, 1e-6)
    od_rgb = -np.log(np.clip(rgb, 1.0 / 255.0, 1.0))
    od = od_rgb.sum(-1)
    fg = od > GLASS_OD
    # Ink strokes are solid; the opening drops specks of tissue-marking dye and stain noise.
    ink = fg & (sat > 0.15) & (val > 0.15) & _green_to_blue(r, g, b, val, delta)
    ink = _open(ink)
    near_black = (val < 0.22) & (sat < 0.8)
    dark = _open(near_black)
    grey = (sat < 0.12) & (val > 0.25) & (val < 0.8)
    stain = fg & ~(near_black & (sat < 0.5))  # ink or debris, not dark stain: kept out of the fold density
    dense = np.where(stain, ndimage.uniform_filter(od, size=(1, FOLD_PX, FOLD_PX)), 0.0)
    lum = _half(gray[:, :h, :w]).reshape(n, -1)
    lum_p10, lum_p90 = np.percentile(lum, [10, 90], axis=1)
    fg_n = fg.reshape(n, -1).sum(1)
    fg_od = np.where(fg_n > 0, (od * fg).reshape(n, -1).sum(1) / np.maximum(fg_n, 1), 0.0)
    fg_sat = np.where(fg_n > 0, (sat * fg).reshape(n, -1).sum(1) / np.maximum(fg_n, 1), 0.0)
    stroke = _strokes(dark)
    band = _strokes(_red_band(r))  # a band that crosses the tile: ink; a piece inside it: debris
    band_od = (od_rgb[..., :2] * band[..., None]).reshape(n, -1, 2).sum(1)
    band_rg = band_od[:, 0] / np.maximum(band_od[:, 1], 1e-6)
    frac = lambda m: m.reshape(n, -1).mean(1)  # noqa: E731
    stain_n = np.maximum(stain.reshape(n, -1).sum(1), 1)[:, None]
    stained_od = (od_rgb * stain[..., None]).reshape(n, -1, 3)
    stain_od = stained_od.sum(1) / stain_n
    od2 = (stained_od.transpose(0, 2, 1) @ od_rgb.reshape(n, -1, 3))[:, _PAIR_IDX[0], _PAIR_IDX[1]] / stain_n
    cols = [frac(fg), frac(ink), frac(stroke), frac(band), band_rg, frac(dark & ~stroke & ~band), frac(grey), sharp,
            lum_p10, lum_p90, fg_od, fg_sat, *stain_od.T, *od2.T, *(frac(dense > t) for t in FOLD_LADDER)]
    return np.stack(cols, axis=1).astype(np.float32)


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 at ``lo``, 1 at ``hi``, linear between: a score whose 0.5 sits half way."""
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def _fold_fraction(measures: np.ndarray, tissue: np.ndarray, factor: float = FOLD_FACTOR) -> np.ndarray:
    """Return each tile's fraction above ``factor`` x the slide's typical density (interpolated on the ladder)."""
    fg_od = measures[:, MEASURES.index("fg_od")]
    solid = (measures[:, MEASURES.index("fg_frac")] > 0.5) & (tissue > 0.5)
    typical = float(np.median(fg_od[solid])) if solid.any() else float(np.median(fg_od)) if len(fg_od) else 1.0
    ladder = np.asarray(FOLD_LADDER)
    target = float(np.clip(factor * typical, ladder[0], ladder[-1]))
    i = int(np.clip(np.searchsorted(ladder, target) - 1, 0, len(ladder) - 2))
    w = (target - ladder[i]) / (ladder[i + 1] - ladder[i])
    first = MEASURES.index(f"od_gt_{FOLD_LADDER[0]}")
    return (1 - w) * measures[:, first + i] + w * measures[:, first + i + 1]


def _fold_density(m: dict[str, np.ndarray], tissue: np.ndarray) -> np.ndarray:
    """Return each tile's stain density relative to the slide's typical tissue (1 = typical, 2 = two layers).

    Relative to *this* slide, so a pale frozen section's fold counts as much as a dense FFPE one's
    (the fraction above a fixed density misses the first and flags the second's cellular areas).
    """
    od_rgb = np.stack([m["fg_od_red"], m["fg_od_green"], m["fg_od_blue"]], 1)
    eosin, total = od_rgb @ _UNMIX[:, 1], od_rgb.sum(1)
    solid = (m["fg_frac"] > 0.5) & (tissue > 0.5)
    if not solid.any():
        solid = m["fg_frac"] > 0
    if not solid.any():
        return np.zeros_like(tissue)
    ratio = lambda x: x / max(float(np.median(x[solid])), 1e-3)  # noqa: E731
    return np.maximum(np.minimum(ratio(eosin), ratio(total) + FOLD_STAIN_SHIFT), ratio(total) / FOLD_NUCLEI_ALLOWANCE)


def _off_stain(m: dict[str, np.ndarray], tissue: np.ndarray) -> np.ndarray:
    """Return each tile's share of optical density outside the slide's own two-stain plane.

    H&E absorb along two directions in OD space, so the slide's tissue lies on a plane through
    the origin (its normal is the weakest axis of the tissue's OD spread, fitted per slide, so
    any H&E shade fits). Ink adds a third absorber: it leaves that plane even over dense tissue,
    where its hue is lost in the stain under it.
    """
    c = np.zeros((len(tissue), 3, 3))
    for k, (i, j) in enumerate(zip(*_PAIR_IDX)):
        c[:, i, j] = c[:, j, i] = m[f"od2_{_PAIRS[k]}"]
    solid = (m["fg_frac"] > 0.5) & (tissue > 0.5)
    if solid.sum() < 3:
        return np.zeros_like(tissue)
    shape = c / np.maximum(np.trace(c, axis1=1, axis2=2), 1e-6)[:, None, None]  # colour spread, not density
    off = np.zeros(len(c))
    for _ in range(2):  # refit without the tiles far off the first plane (ink must not tilt it)
        fit = solid & (off <= 3.0 * np.median(off[solid]))
        normal = np.linalg.eigh(np.mean(shape[fit], 0))[1][:, 0]
        off = np.einsum("i,nij,j->n", normal, shape, normal)
    return off * (m["fg_frac"] > 0)


def _washed(m: dict[str, np.ndarray], tissue: np.ndarray) -> np.ndarray:
    """Return how far each tissue tile's stain saturation falls below the slide's (tissue under a bubble greys out).

    Judged on tiles the tissue mask calls mostly tissue: a tile of grey glass is not washed-out tissue.
    """
    solid = tissue > 0.5
    typical = float(np.median(m["fg_sat"][solid])) if solid.any() else 0.0
    if typical <= 0.05:
        return np.zeros_like(tissue)
    drop = 1.0 - m["fg_sat"] / typical
    return _ramp(drop, 0.3, 0.45) * _ramp(-m["lum_p10"], -0.8, -0.7) * _ramp(tissue, 0.4, 0.6)


def artifact_scores(measures: np.ndarray, tissue: np.ndarray) -> dict[str, np.ndarray]:
    """Return per-class scores in [0, 1] (float32) from :func:`tile_measures` rows and tissue fractions."""
    if len(measures) == 0:
        return {k: np.zeros(0, np.float32) for k in ARTIFACT_CLASSES}
    m = {name: measures[:, i].astype(np.float64) for i, name in enumerate(MEASURES)}
    stained = np.clip(m["fg_frac"], 0.0, 1.0)
    # Washed out: even the darkest pixels are bright and the stain has lost its colour;
    # too dark: even the brightest pixels are dark. A dark tile is not also pen, fold or debris.
    over = _ramp(m["lum_p10"], 0.75, 0.85) * _ramp(-m["fg_sat"], -0.2, -0.12) * _ramp(stained, 0.15, 0.3)
    under = _ramp(-m["lum_p90"], -0.45, -0.30)
    bubble = np.maximum(_ramp(m["grey_frac"], 0.08, 0.30), _washed(m, np.asarray(tissue, np.float64)))
    # Grey matter (a bubble's rim, a dark exposure) also leaves the stain plane: it is not ink.
    inked = _ramp(_off_stain(m, np.asarray(tissue, np.float64)), PEN_OFF_LO, PEN_OFF_HI) * (1 - bubble)
    # A band dark in red across the tile, redder in density than the slide's tissue, is ink where the
    # rest of the tile is lit (a dim tile is exposure).
    solid = (m["fg_frac"] > 0.5) & (np.asarray(tissue) > 0.5)
    tissue_rg = m["fg_od_red"] / np.maximum(m["fg_od_green"], 1e-6)
    typical_rg = float(np.median(tissue_rg[solid])) if solid.any() else float(np.median(tissue_rg))
    banded = (_ramp(m["band_frac"] - 2.0 * np.median(m["band_frac"]), BAND_LO, BAND_HI)
              * _ramp(m["band_rg"] - typical_rg, BAND_RG_LO, BAND_RG_HI) * _ramp(m["lum_p90"], 0.35, 0.5))
    # A hue most of the slide shows is its stain (e.g. Giemsa blue), not ink.
    hued = _ramp(np.maximum(m["ink_frac"] - 2.0 * np.median(m["ink_frac"]), m["stroke_frac"]), 0.02, 0.08)
    scores = {
        "pen": np.max([hued, inked, banded], axis=0) * (1 - under),
        "debris": _ramp(m["dark_frac"], 0.02, 0.10) * (1 - under),  # dark pieces that do not cross the tile
        # Grey matter (rims, slide edges), or tissue whose colour is washed out under the air.
        "bubble": bubble * (1 - under),
        # The whole tile twice as dense as this slide's tissue, or a part of it (the fold's edge).
        "fold": np.maximum(_ramp(_fold_density(m, np.asarray(tissue, np.float64)), FOLD_LO, FOLD_HI),
                           _ramp(_fold_fraction(measures, tissue), 0.30, 0.55)) * (1 - under),
        # Blur is only defined where there is tissue to be sharp.
        "blur": _ramp(-np.log(np.maximum(m["sharpness"], 1e-3)), -np.log(0.9), -np.log(0.5))
        * _ramp(stained, 0.3, 0.6),
        "exposure": np.maximum(over, under),
    }
    return {k: scores[k].astype(np.float32) for k in ARTIFACT_CLASSES}
