"""Morphological outliers: how unlike the rest of the slide each tile's embedding is.

Why not the distance to the nearest neighbour: fifty neighbouring tiles of the same
abnormal tissue are each other's nearest neighbours and would all score low. Instead
the slide's *typical* tissue is modelled as a robust Gaussian in a PCA subspace of the
embeddings (any encoder, any width): per-feature median/MAD standardisation (clipped), then a
few concentration steps (the C-steps of the minimum covariance determinant) that refit
mean and covariance on the most typical ``trim`` share of tiles. An abnormal region up
to ``1 - trim`` of the tissue is thereby left out of the model and stays high however
large it is. Two distances, the Mahalanobis distance inside the subspace and the
residual energy outside it, are each turned into a robust z-score against the fit
tiles (on a log scale) and the larger counts; a logistic maps it to [0, 1], so one
threshold (0.5) means the same on every slide and encoder.

Tiles at the tissue's edge (partly glass) are a minority unlike the solid tiles, so the
trim drops most of them from the model and calls the odder edges abnormal (a slide read
at 20x has many solid tiles for each edge tile). Given each tile's tissue share, an edge
tile is also judged by a second model whose trim keeps the most typical share of the
edge tiles and of the solid ones separately, and takes the lower z: an edge is abnormal
only when it is unlike the slide's other edges too. Solid tiles keep the first model
(the second, stretched along the edges' glass share, would blur their judgement).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

#: Robust z at which a tile reads as an outlier (score 0.5).
Z_OUTLIER = 3.0
#: Width of the logistic that maps z to [0, 1]: 0.5 at Z_OUTLIER, ~0.95 two z-units above.
Z_WIDTH = 0.7
#: Standardised features are clipped here, so that no single feature decides alone.
CLIP = 10.0
#: Tiles with less tissue than this are edge tiles: trimmed apart from the solid ones.
SOLID_TISSUE = 0.9


@dataclass(frozen=True)
class OutlierModel:
    """A robust model of a slide's typical tiles; :meth:`z` applies it to any rows."""

    center: np.ndarray  # per-feature median
    scale: np.ndarray  # per-feature robust scale
    mean: np.ndarray  # mean of the standardised typical tiles
    components: np.ndarray  # (k, D) principal axes
    variances: np.ndarray  # (k,) variance along each axis
    calibration: np.ndarray = field(default_factory=lambda: np.array([[0.0, 1.0], [0.0, 1.0]]))

    def parts(self, features: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """Return (N, 2) log distances: Mahalanobis inside the subspace, residual energy outside it."""
        out = np.empty((len(features), 2), np.float64)
        for i in range(0, len(features), chunk):
            z = self.standardise(features[i:i + chunk]) - self.mean
            proj = z @ self.components.T
            out[i:i + chunk, 0] = (proj * proj / self.variances).sum(1)
            out[i:i + chunk, 1] = np.maximum((z * z).sum(1) - (proj * proj).sum(1), 0.0)
        return np.log(out + 1e-9)

    def z(self, features: np.ndarray) -> np.ndarray:
        """Return each row's robust z-score against the typical tiles: the larger of its two parts'."""
        parts = self.parts(features)
        return ((parts - self.calibration[:, 0]) / self.calibration[:, 1]).max(axis=1)

    def standardise(self, features: np.ndarray) -> np.ndarray:
        return np.clip((features.astype(np.float64) - self.center) / self.scale, -CLIP, CLIP)


def logistic(z: np.ndarray) -> np.ndarray:
    """Map robust z-scores to [0, 1]: 0.5 at Z_OUTLIER."""
    return (1.0 / (1.0 + np.exp(-(np.asarray(z, np.float64) - Z_OUTLIER) / Z_WIDTH))).astype(np.float32)


def robust_spread(x: np.ndarray) -> tuple[float, float]:
    """Return the median and the MAD-based standard deviation of ``x`` (never zero)."""
    med = float(np.median(x))
    mad = 1.4826 * float(np.median(np.abs(x - med)))
    return med, max(mad, 1e-3 * (abs(med) + 1.0), 1e-6)


def fit_outlier_model(features: np.ndarray, fit: np.ndarray | None = None, *, strata: np.ndarray | None = None,
                      trim: float = 0.75, steps: int = 4, max_rows: int = 20000, var_kept: float = 0.9,
                      seed: int = 0) -> OutlierModel:
    """Fit the robust model on ``features`` rows where ``fit`` is true (e.g. tiles with no artifact).

    ``trim`` is the share of rows each concentration step keeps: abnormal tissue up to
    ``1 - trim`` of the slide stays out of the model. Not 0.5 (the most robust): real
    slides hold several normal tissue types, and a smaller one would all read as abnormal.
    ``strata`` (one label per row of ``features``, e.g. edge vs solid tile) makes each step
    keep that share of every stratum, so no kind of normal tile is trimmed away whole.
    """
    rows = np.flatnonzero(fit) if fit is not None and int(np.sum(fit)) >= 8 else np.arange(len(features))
    if len(rows) < 3:
        raise ValueError(f"need at least 3 tiles to model a slide, got {len(rows)}")
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    x = features[rows].astype(np.float64)
    groups = [np.arange(len(rows))] if strata is None else [np.flatnonzero(strata[rows] == k)
                                                             for k in np.unique(strata[rows])]
    center = np.median(x, axis=0)
    # MAD, floored at half the standard deviation: features that are zero on most tiles
    # (a fraction of dark pixels) have a MAD near zero and would otherwise dominate.
    scale = np.maximum(1.4826 * np.median(np.abs(x - center), axis=0), 0.5 * x.std(axis=0))
    scale = np.maximum(scale, 1e-6 + 1e-3 * float(np.median(scale)))
    z = np.clip((x - center) / scale, -CLIP, CLIP)
    keep = np.arange(len(z))
    model = _fit_gaussian(z, center, scale, var_kept)
    for _ in range(steps):
        parts = model.parts(x)
        med = np.median(parts[keep], axis=0)
        far = parts[:, 0] - med[0] + parts[:, 1] - med[1]
        keep = np.concatenate([g[np.argsort(far[g])[:max(3, int(trim * len(g)))]] for g in groups])
        model = _fit_gaussian(z[keep], center, scale, var_kept)
    # Calibrate each part on all fit rows: median and upper-quartile spread, once more without
    # the rows beyond Z_OUTLIER, so that a large abnormal minority does not widen the scale.
    parts = model.parts(x)
    calibration = np.array([_clipped_spread(parts[:, 0]), _clipped_spread(parts[:, 1])])
    return replace(model, calibration=calibration)


def _clipped_spread(x: np.ndarray, rounds: int = 1) -> tuple[float, float]:
    """Return the median of ``x`` and a spread from its upper quartile, again without the values above Z_OUTLIER.

    The upper quartile, not the MAD: distances of real tissue have a long right tail, and a
    spread measured on the left-heavy core would call a fifth of a normal slide abnormal.
    """
    med, spread = _upper_spread(x)
    for _ in range(rounds):
        kept = x[(x - med) / spread < Z_OUTLIER]
        if len(kept) < 3:
            break
        new = _upper_spread(kept)
        if np.allclose(new, (med, spread)):
            break
        med, spread = new
    return med, spread


def _upper_spread(x: np.ndarray) -> tuple[float, float]:
    med, q75 = np.percentile(x, [50, 75])
    return float(med), max(float(q75 - med) / 0.6745, 1e-3 * (abs(float(med)) + 1.0), 1e-6)


def _top_eigh(sym: np.ndarray, k: int, iters: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``k`` largest eigenvalues (descending) and eigenvectors of a symmetric PSD matrix."""
    m = sym.shape[0]
    width = min(m, k + 10)
    if width >= m // 2:  # small: decompose it all
        vals, vecs = np.linalg.eigh(sym)
        return np.maximum(vals[::-1][:k], 0.0), vecs[:, ::-1][:, :k]
    q = np.linalg.qr(sym @ np.random.default_rng(seed).standard_normal((m, width)))[0]
    for _ in range(iters):
        q = np.linalg.qr(sym @ q)[0]
    vals, small = np.linalg.eigh(q.T @ sym @ q)
    return np.maximum(vals[::-1][:k], 0.0), (q @ small)[:, ::-1][:, :k]


def _fit_gaussian(z: np.ndarray, center: np.ndarray, scale: np.ndarray, var_kept: float) -> OutlierModel:
    """Fit mean and a PCA subspace (at most n/10 axes, up to 32) to standardised rows ``z``.

    Only the leading eigenpairs of the smaller Gram matrix are found (rows x rows for wide
    embeddings, features x features otherwise), by randomised subspace iteration: a few
    thin matrix products instead of a full decomposition.
    """
    mean = z.mean(axis=0)
    zc = z - mean
    n, d = zc.shape
    wide = d > n
    gram = zc @ zc.T if wide else zc.T @ zc
    m = gram.shape[0]
    k_cap = max(1, min(32, n // 10, m - 1))
    vals, vecs = _top_eigh(gram, k_cap)
    if wide:  # eigenvectors of Z Z^T map to principal axes through Z^T
        vecs = zc.T @ vecs / np.sqrt(np.maximum(vals, 1e-12))
    total = float(np.trace(gram)) + 1e-12
    k = int(np.clip(np.searchsorted(np.cumsum(vals) / total, var_kept) + 1, 1, k_cap))
    var = vals[:k] / max(n - 1, 1)
    return OutlierModel(center, scale, mean, vecs[:, :k].T, var + 1e-3 * total / max(n - 1, 1) / d)


def neighbourhood_mean(values: np.ndarray, coords: np.ndarray, patch_size_level0: int, use: np.ndarray,
                       size: int = 3, min_tiles: int = 6) -> np.ndarray:
    """Return each tile's mean of ``values`` rows over its ``size`` x ``size`` lattice neighbourhood.

    Only ``use`` rows count; rows whose neighbourhood holds fewer than ``min_tiles`` of
    them (tissue edges, where a mean of few tiles is noisy) are NaN.
    """
    cells = coords // patch_size_level0
    cells = cells - cells.min(axis=0)
    shape = (int(cells[:, 1].max()) + 1, int(cells[:, 0].max()) + 1)
    weight = np.zeros(shape)
    weight[cells[use, 1], cells[use, 0]] = 1.0
    den = ndimage.uniform_filter(weight, size, mode="constant")[cells[:, 1], cells[:, 0]]
    out = np.full(values.shape, np.nan)
    plane = np.zeros(shape)
    for j in range(values.shape[1]):
        plane[:] = 0.0
        plane[cells[use, 1], cells[use, 0]] = values[use, j]
        num = ndimage.uniform_filter(plane, size, mode="constant")[cells[:, 1], cells[:, 0]]
        out[:, j] = num / np.maximum(den, 1e-9)
    out[den * size * size < min_tiles - 0.5] = np.nan
    return out


def _robust_z(features: np.ndarray, use: np.ndarray, edge: np.ndarray | None) -> tuple[OutlierModel, np.ndarray]:
    """Return the model of ``use`` rows and each row's z; ``edge`` rows take the lower of two z (module notes)."""
    model = fit_outlier_model(features, use)
    z = model.z(features)
    if edge is not None and edge[use].any() and not edge[use].all():
        with_edges = fit_outlier_model(features, use, strata=edge.astype(np.int64))
        z[edge] = np.minimum(z[edge], with_edges.z(features[edge]))
    return model, z


def outlier_scores(features: np.ndarray, fit: np.ndarray | None = None, coords: np.ndarray | None = None,
                   patch_size_level0: int | None = None, weight: np.ndarray | None = None,
                   tissue: np.ndarray | None = None) -> np.ndarray:
    """Return calibrated per-tile outlier scores in [0, 1] against the slide's own typical tiles.

    Two scales: each tile alone, and (with ``coords``) each tile with its 3 x 3
    neighbourhood averaged, which finds regions whose tiles are each only mildly
    unusual but all in the same way (a dense nodule) while single odd tiles (a lumen)
    average out; a tile takes the larger of its two z-scores. ``fit`` selects the tiles
    that model normal tissue (solid tissue, no artifact); ``weight`` in [0, 1] scales
    the result (e.g. down for tiles that are mostly glass); ``tissue`` (each tile's tissue
    share) judges edge tiles against the slide's other edges too (see the module notes).
    """
    n = len(features)
    if n < 3:
        return np.zeros(n, np.float32)
    use = np.ones(n, bool) if fit is None or int(np.sum(fit)) < 8 else np.asarray(fit, bool)
    edge = None if tissue is None else np.asarray(tissue) < SOLID_TISSUE
    model, z = _robust_z(features, use, edge)
    if coords is not None and patch_size_level0 is not None and n >= 9:
        context = neighbourhood_mean(model.standardise(features), coords, patch_size_level0, use)
        full = ~np.isnan(context).any(axis=1)
        if int((full & use).sum()) >= 8:
            z[full] = np.maximum(z[full], _robust_z(context[full], use[full], None if edge is None else edge[full])[1])
    score = logistic(z)
    return (score * weight).astype(np.float32) if weight is not None else score
