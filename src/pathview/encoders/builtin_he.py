"""The built-in encoder: H&E colour, stain, texture and nuclear-density statistics, no weights.

Why: everything must work on a laptop with no GPU and no model downloaded. These
features are the ones a pathologist's eye uses first and that separate tissue
classes reasonably well (stroma vs. tumour vs. fat vs. necrosis, blur, pen, folds):

- colour: RGB mean and spread, saturation, luminance distribution;
- stains: Ruifrok-Johnston colour deconvolution into haematoxylin (nuclei), eosin
  (cytoplasm, stroma) and a residual channel; their means, spreads, and the
  fraction of pixels above a ladder of concentrations;
- texture at three scales (tile, 1/2, 1/4): gradient energy, Laplacian energy and
  local standard deviation of optical density and haematoxylin;
- spatial structure: autocorrelation of haematoxylin and eosin at 2, 8 and 32 px;
- nuclei: the fraction of strongly haematoxylin-stained pixels and the density of
  haematoxylin peaks (one per nucleus, roughly) at two thresholds.

Every operation is a tensor op on a whole batch (no per-pixel or per-tile Python); on
a CPU the batch is taken two tiles at a time so that the intermediate images stay in
cache: about 200 tiles a second on one core. Values are kept
roughly in unit range (fractions, optical densities, log energies); consumers that
compare tiles standardise per slide.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .tile_encoder import resize_square, uint8_to_nchw

# Stain vectors (optical density per unit stain, R, G, B): Ruifrok & Johnston 2001, as skimage.
_RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_RGB_FROM_HED = _RGB_FROM_HED / np.linalg.norm(_RGB_FROM_HED, axis=1, keepdims=True)
HED_FROM_RGB = np.linalg.inv(_RGB_FROM_HED).astype(np.float32)

INPUT_SIZE = 224
H_LADDER = (0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.3)
E_LADDER = (0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0)
LUMA_LADDER = (0.2, 0.35, 0.5, 0.65, 0.8, 0.9)
NUCLEUS_H = (0.45, 0.8)
SHIFTS = (2, 8, 32)
SCALES = (1, 2, 4)
CPU_BLOCK = 2  # tiles per pass on a CPU
TISSUE_OD = 0.3  # summed RGB optical density above which a pixel is stained
GLASS_OD = 0.25  # ... and below which it is bare glass (about RGB 235 and brighter)

FEATURE_NAMES: tuple[str, ...] = (
    "tissue_fraction", "glass_fraction", "dark_fraction",
    "r_mean", "g_mean", "b_mean", "r_std", "g_std", "b_std", "sat_mean", "sat_std",
    *(f"luma_gt_{t}" for t in LUMA_LADDER),
    "h_mean", "h_std", "e_mean", "e_std", "res_mean", "res_std", "h_share",
    *(f"h_gt_{t}" for t in H_LADDER), *(f"e_gt_{t}" for t in E_LADDER),
    *(f"{m}_{c}_s{s}" for s in SCALES for c in ("od", "h") for m in ("grad", "lap", "lstd")),
    *(f"lstd_e_s{s}" for s in SCALES),
    *(f"acorr_{c}_{d}" for c in ("h", "e") for d in SHIFTS),
    *(f"{m}_{t}" for t in NUCLEUS_H for m in ("nuc_frac", "nuc_density", "nuc_size")),
)


def _masked_mean_std(v: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of v (B, C, N) over the pixels where m (B, 1, N) is 1 (0 where m is empty): (B, C) each."""
    n = m.sum(2).clamp_min(1.0)
    mean = (v * m).sum(2) / n
    var = (((v - mean[..., None]) ** 2) * m).sum(2) / n
    return mean, var.sqrt()


def _ladder(v: torch.Tensor, thresholds: tuple[float, ...]) -> torch.Tensor:
    """Fraction of the values of v (B, N) above each threshold: (B, len(thresholds))."""
    t = torch.tensor(thresholds, dtype=v.dtype, device=v.device)
    return (v[:, None, :] > t[None, :, None]).float().mean(2)


def _box3(x: torch.Tensor) -> torch.Tensor:
    """3x3 mean over the valid region (H-2, W-2): separable sums, far cheaper than a pooling op."""
    r = x[..., :-2, :] + x[..., 1:-1, :] + x[..., 2:, :]
    return (r[..., :-2] + r[..., 1:-1] + r[..., 2:]) * (1.0 / 9.0)


def _half(x: torch.Tensor) -> torch.Tensor:
    """2x2 block means of NCHW x (even H and W), as strided adds (a strided reduction is slower)."""
    return (x[..., ::2, ::2] + x[..., 1::2, ::2] + x[..., ::2, 1::2] + x[..., 1::2, 1::2]) * 0.25


def _is_peak(x: torch.Tensor, r: int = 2) -> torch.Tensor:
    """True where x (B, 1, H, W) is the maximum of its (2r+1)^2 window: separable, no pooling op."""
    p = F.pad(x, (r, r, r, r), value=float("-inf"))
    h = p[..., :, : p.shape[-1] - 2 * r]
    for i in range(1, 2 * r + 1):
        h = torch.maximum(h, p[..., :, i: p.shape[-1] - 2 * r + i])
    v = h[..., : h.shape[-2] - 2 * r, :]
    for i in range(1, 2 * r + 1):
        v = torch.maximum(v, h[..., i: h.shape[-2] - 2 * r + i, :])
    return x >= v


def _texture(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradient, Laplacian and local-std energies (log1p of means) of each channel of x (B, C, H, W)."""
    mu = _box3(x)
    var = _box3(x * x) - mu * mu
    lstd = var.clamp_min(0).sqrt().mean((2, 3))
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean((2, 3))
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean((2, 3))
    lap = (4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:])
    return torch.log1p(10 * (dx + dy)), torch.log1p(10 * lap.abs().mean((2, 3))), torch.log1p(10 * lstd)


def _autocorr(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Normalised autocorrelation of each channel of x (B, C, H, W) at a horizontal and vertical shift."""
    xc = x - x.mean((2, 3), keepdim=True)
    var = (xc * xc).mean((2, 3)).clamp_min(1e-6)
    cx = (xc[..., :, shift:] * xc[..., :, :-shift]).mean((2, 3))
    cy = (xc[..., shift:, :] * xc[..., :-shift, :]).mean((2, 3))
    return (cx + cy) / (2 * var)


class HEStatsEncoder(nn.Module):
    """uint8 tiles (B, H, W, 3) → (B, 73) float32 H&E statistics; resized to 224 px first."""

    input_size = INPUT_SIZE
    embed_dim = len(FEATURE_NAMES)

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("hed_from_rgb", torch.from_numpy(HED_FROM_RGB), persistent=False)

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        if tiles.device.type == "cpu" and len(tiles) > CPU_BLOCK:
            # Cache blocking: the ~200 passes over each block stay in L2 (3x faster than whole batches).
            return torch.cat([self._forward(tiles[i:i + CPU_BLOCK]) for i in range(0, len(tiles), CPU_BLOCK)])
        return self._forward(tiles)

    def _forward(self, tiles: torch.Tensor) -> torch.Tensor:
        x = resize_square(uint8_to_nchw(tiles), INPUT_SIZE, "bilinear").contiguous() / 255.0  # (B, 3, S, S)
        b = x.shape[0]
        od = -torch.log((x * 255.0 + 1.0) / 256.0)  # Beer-Lambert optical density, 0 on white
        hed = F.conv2d(od, self.hed_from_rgb.t()[:, :, None, None]).clamp_min_(0)
        # Fine texture at full resolution; everything else on 2x2 means (4x fewer pixels).
        x2, od2, hed2 = (_half(t) for t in (x, od, hed))
        od_sum = od2.sum(1).flatten(1)
        tissue = (od_sum > TISSUE_OD).float()
        rgb = x2.flatten(2)
        luma = (0.299 * x2[:, 0] + 0.587 * x2[:, 1] + 0.114 * x2[:, 2]).flatten(1)
        mx, mn = x2.amax(1), x2.amin(1)
        sat = ((mx - mn) / mx.clamp_min(1e-3)).flatten(1)
        stains = hed2.flatten(2)  # (B, 3, N): haematoxylin, eosin, residual

        parts = [torch.stack([tissue.mean(1), (od_sum < GLASS_OD).float().mean(1), (luma < 0.2).float().mean(1)], 1),
                 rgb.mean(2), rgb.std(2), torch.stack([sat.mean(1), sat.std(1)], 1), _ladder(luma, LUMA_LADDER)]
        mean, std = _masked_mean_std(stains, tissue[:, None])
        parts += [torch.stack([mean, std], 2).flatten(1),  # h_mean, h_std, e_mean, e_std, res_mean, res_std
                  (mean[:, 0] / (mean[:, :2].sum(1)).clamp_min(1e-3))[:, None],
                  _ladder(stains[:, 0], H_LADDER), _ladder(stains[:, 1], E_LADDER)]

        od_full, od_half = od.mean(1, keepdim=True), od2.mean(1, keepdim=True)
        pyramid = [torch.cat([od_full, hed[:, :2]], 1), torch.cat([od_half, hed2[:, :2]], 1)]
        pyramid.append(_half(pyramid[1]))  # SCALES 1, 2, 4; channels: optical density, H, E
        lstd_e = []
        for level in pyramid:
            grad, lap, lstd = _texture(level)
            parts.append(torch.stack([grad[:, 0], lap[:, 0], lstd[:, 0], grad[:, 1], lap[:, 1], lstd[:, 1]], 1))
            lstd_e.append(lstd[:, 2])
        parts.append(torch.stack(lstd_e, 1))
        # at half resolution shifts of 1, 4, 16 are 2, 8, 32 tile pixels
        parts.append(torch.stack([_autocorr(hed2[:, :2], d // 2) for d in SHIFTS], 2).flatten(1))

        hs = _box3(hed2[:, :1])
        peaks = _is_peak(hs)
        area = float(hs.shape[-1] * hs.shape[-2] * 4)  # in full-resolution pixels
        for t in NUCLEUS_H:
            above = hs > t
            frac = above.float().flatten(1).mean(1)
            count = (peaks & above).float().flatten(1).sum(1)
            parts.append(torch.stack([frac, torch.log1p(count * 1e4 / area),
                                      torch.log1p(frac * area / count.clamp_min(1.0)) / 5], 1))
        out = torch.cat(parts, 1)
        assert out.shape == (b, self.embed_dim)
        return out.float()
