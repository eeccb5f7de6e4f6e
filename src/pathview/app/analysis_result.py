"""A finished analysis folder read back for the viewer: tile scores per layer and the ranked regions.

Only what the overlay and the regions panel draw is read (coordinates and score
datasets of ``tiles.h5``, not the features), so opening a slide with a large analysis
stays quick. No Qt here: the same object serves the tests without a window.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from ..analysis.analyze import read_summary
from ..analysis.artifacts import ARTIFACT_CLASSES
from ..analysis.outputs import FINDINGS_FILE, TILES_FILE
from ..analysis.regions import CLASS_COLORS, CLASS_TITLES, OUTLIER, THRESHOLD
from ..errors import PathviewError

#: Overlay layers in the order the Heatmap panel lists them: the outlier score, then each artifact class.
LAYERS: tuple[str, ...] = (OUTLIER, *ARTIFACT_CLASSES)


class AnalysisLoadError(PathviewError):
    """A finished analysis folder could not be read (damaged or from an incompatible version)."""

    def __init__(self, folder: str | os.PathLike, cause: str) -> None:
        self.folder = Path(folder)
        super().__init__(f"cannot read the analysis in '{self.folder}': {cause}")


@dataclass(frozen=True)
class RegionItem:
    """One ranked region as the panel shows it; ``id`` is stable across reruns that find the same region."""

    id: str
    rank: int
    cls: str
    score: float
    tiles: int
    area_mm2: float | None
    geometry: BaseGeometry

    @property
    def title(self) -> str:
        return CLASS_TITLES.get(self.cls, self.cls)

    @property
    def color(self) -> tuple[int, int, int]:
        return CLASS_COLORS.get(self.cls, (200, 200, 200))

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """Return (x0, y0, x1, y1) in level-0 pixels."""
        return tuple(float(v) for v in self.geometry.bounds)  # type: ignore[return-value]


@dataclass
class AnalysisResult:
    """Per-tile scores (one array per layer, rows matching ``coords``) and regions, best first."""

    folder: Path
    summary: dict[str, Any]
    coords: np.ndarray
    patch_size_level0: int
    scores: dict[str, np.ndarray]
    regions: list[RegionItem] = field(default_factory=list)
    threshold: float = THRESHOLD

    @property
    def quickhash(self) -> str:
        return str(self.summary.get("slide_quickhash", ""))

    def fraction_above(self, layer: str) -> float:
        """Return the fraction of tiles whose ``layer`` score reaches the decision threshold."""
        values = self.scores.get(layer)
        return float((values >= self.threshold).mean()) if values is not None and len(values) else 0.0


def load_result(folder: str | os.PathLike) -> AnalysisResult:
    """Read a finished scan output folder; raise :class:`AnalysisLoadError` when it is unfinished or damaged."""
    import h5py

    out = Path(folder)
    summary = read_summary(out)
    if summary is None:
        raise AnalysisLoadError(out, "it is unfinished (no summary.json)")
    try:
        with h5py.File(out / TILES_FILE, "r") as f:
            coords = np.asarray(f["coords"][:], np.int64)
            ps0 = int(f.attrs["patch_size_level0"])
            scores = {OUTLIER: np.asarray(f["anomaly"][:], np.float32)}
            for name in ARTIFACT_CLASSES:
                if f"qc_{name}" in f:
                    scores[name] = np.asarray(f[f"qc_{name}"][:], np.float32)
            threshold = float(f.attrs.get("score_threshold", THRESHOLD))
    except (OSError, KeyError) as exc:
        raise AnalysisLoadError(out, f"{TILES_FILE} is damaged or incomplete ({exc})") from None
    return AnalysisResult(out, summary, coords, ps0, scores, _read_regions(out / FINDINGS_FILE), threshold)


def _read_regions(path: Path) -> list[RegionItem]:
    try:
        features = json.loads(path.read_text()).get("features", [])
    except (OSError, json.JSONDecodeError) as exc:
        raise AnalysisLoadError(path.parent, f"{FINDINGS_FILE} is unreadable ({exc})") from None
    regions = []
    for i, feat in enumerate(features):
        props = feat.get("properties", {})
        info = props.get("pathview", {})
        if info.get("kind") != "anomaly-region":
            continue
        m = props.get("measurements", {})
        regions.append(RegionItem(
            id=str(feat.get("id") or f"region-{i}"), rank=int(m.get("rank", i + 1)),
            cls=str(info.get("class", OUTLIER)),
            score=float(m.get("score", 0.0)), tiles=int(m.get("tiles", 0)), area_mm2=m.get("area mm^2"),
            geometry=shape(feat["geometry"])))
    return sorted(regions, key=lambda r: r.rank)
