"""Regions: neighbouring high-scoring tiles merged into ranked, valid polygons with a class.

Each tile takes the class of its highest score (an artifact class or the morphological
outlier score) when that score reaches the threshold; tiles of one class that touch
(8-neighbourhood on the tile lattice) form one region. Outlier tiles somewhat below the
threshold join a touching outlier region, and four or more of them touching form one of
their own: many neighbours unusual in the same way are evidence a single tile is not. A region's score is the mean of
its tiles' scores; the ranking discounts one- and two-tile regions (isolated tiles are
more often noise than findings) but never reorders regions of three or more tiles by size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from shapely import box, make_valid, union_all
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from .artifacts import ARTIFACT_CLASSES, ARTIFACT_TITLES

OUTLIER = "outlier"
OUTLIER_TITLE = "Morphological outlier"
#: Class names as QuPath shows them, and their colours (r, g, b).
CLASS_TITLES: dict[str, str] = {OUTLIER: OUTLIER_TITLE, **ARTIFACT_TITLES}
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    OUTLIER: (230, 40, 40), "pen": (30, 160, 80), "blur": (120, 120, 220), "fold": (150, 60, 170),
    "bubble": (40, 170, 200), "debris": (60, 60, 60), "exposure": (230, 170, 30),
}
THRESHOLD = 0.5
#: Outlier tiles under THRESHOLD still form a region when at least GROUP_TILES of them touch.
GROUP_THRESHOLD = 0.35
GROUP_TILES = 4


@dataclass(frozen=True)
class Region:
    """One ranked region; ``geometry`` is in level-0 pixels, valid, tiles merged."""

    rank: int
    cls: str
    score: float
    max_score: float
    tiles: np.ndarray  # row indices into the tile arrays
    geometry: BaseGeometry

    @property
    def title(self) -> str:
        return CLASS_TITLES[self.cls]

    @property
    def n_tiles(self) -> int:
        return len(self.tiles)

    def area_mm2(self, level0_mpp: float) -> float:
        return float(self.geometry.area) * level0_mpp * level0_mpp / 1e6

    def centroid(self) -> tuple[float, float]:
        c = self.geometry.centroid
        return float(c.x), float(c.y)

    def bbox(self) -> tuple[int, int, int, int]:
        """Return (x, y, w, h) in level-0 pixels."""
        x0, y0, x1, y1 = self.geometry.bounds
        return int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0))


def class_scores(anomaly: np.ndarray, artifacts: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Return the class names and an (N, C) score matrix: the outlier score first, then each artifact."""
    names = [OUTLIER, *[c for c in ARTIFACT_CLASSES if c in artifacts]]
    return names, np.stack([anomaly, *[artifacts[c] for c in names[1:]]], axis=1).astype(np.float32)


def tile_labels(scores: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Return each tile's class index (its highest score), or -1 where no score reaches ``threshold``."""
    if scores.size == 0:
        return np.empty(0, np.int64)
    best = scores.argmax(axis=1)
    return np.where(scores.max(axis=1) >= threshold, best, -1)


def find_regions(coords: np.ndarray, patch_size_level0: int, anomaly: np.ndarray,
                 artifacts: dict[str, np.ndarray], threshold: float = THRESHOLD) -> list[Region]:
    """Return the regions of tiles scoring at least ``threshold``, best first (rank 1 = look here first)."""
    names, scores = class_scores(anomaly, artifacts)
    labels = tile_labels(scores, threshold)
    # Morphological outliers also count at a lower score where enough touching tiles agree
    # (spatial coherence is evidence too): a group of GROUP_TILES tiles each over GROUP_THRESHOLD.
    weak = (labels < 0) & (scores[:, 0] >= GROUP_THRESHOLD)
    if not (labels >= 0).any() and not weak.any():
        return []
    cells = coords // patch_size_level0
    origin = cells.min(axis=0)
    cells = cells - origin
    shape = (int(cells[:, 1].max()) + 1, int(cells[:, 0].max()) + 1)
    found: list[tuple[float, str, float, float, np.ndarray]] = []
    for ci, name in enumerate(names):
        strong = labels == ci
        rows = np.flatnonzero(strong | weak) if ci == 0 else np.flatnonzero(strong)
        if not len(rows):
            continue
        lattice = np.zeros(shape, bool)
        lattice[cells[rows, 1], cells[rows, 0]] = True
        comp, _ = ndimage.label(lattice, structure=np.ones((3, 3), bool))
        ids = comp[cells[rows, 1], cells[rows, 0]]
        for cid in np.unique(ids):
            members = rows[ids == cid]
            if not strong[members].any() and len(members) < GROUP_TILES:
                continue
            s = scores[members, ci]
            mean = float(s.mean())
            found.append((mean * (1.0 - 0.5 ** len(members)), name, mean, float(s.max()), members))
    found.sort(key=lambda f: (-f[0], -len(f[4])))
    return [Region(i + 1, name, mean, mx, members, tiles_polygon(coords[members], patch_size_level0))
            for i, (_, name, mean, mx, members) in enumerate(found)]


def tiles_polygon(coords: np.ndarray, size: int) -> BaseGeometry:
    """Return the union of square tiles as a valid Polygon or MultiPolygon (shared edges dissolved)."""
    squares = [box(int(x), int(y), int(x) + size, int(y) + size) for x, y in coords]
    geom = make_valid(union_all(squares))
    if not isinstance(geom, (Polygon, MultiPolygon)):  # make_valid may return a collection: keep the areas
        geom = union_all([g for g in getattr(geom, "geoms", []) if isinstance(g, (Polygon, MultiPolygon))])
    return geom.simplify(0)


def region_index(n_tiles: int, regions: list[Region]) -> np.ndarray:
    """Return each tile's region rank (0 where the tile is in no region), int32."""
    out = np.zeros(n_tiles, np.int32)
    for r in regions:
        out[r.tiles] = r.rank
    return out
