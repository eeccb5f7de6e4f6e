"""Read a region's analysis scores (anomaly, artifacts) from a scan folder's ``tiles.h5``.

Read defensively by name: any one-value-per-tile numeric dataset other than the
geometry is a score (``anomaly``, one per artifact class, in groups or not), so scores
added by later analyses show up without a change here. A file of another slide, or
one that cannot be read, gives no scores rather than wrong ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_NOT_SCORES = {"coords", "features", "tissue"}


def find_tiles_h5(where: str | os.PathLike | list | None, quickhash: str) -> Path | None:
    """Return the ``tiles.h5`` of the slide's newest finished scan under ``where`` (scan output or
    workspace folders; None: the default workspace), or None when the slide was not analysed."""
    from ..scan import find_scan_output
    from ..workspace import default_root

    folder = find_scan_output(where if where is not None else default_root(), quickhash)
    return folder / "tiles.h5" if folder is not None and (folder / "tiles.h5").is_file() else None


@dataclass(frozen=True)
class Score:
    """One score over the region's tiles; ``slide_rank`` is the fraction of the slide's tiles below ``max``."""

    name: str
    mean: float
    max: float
    slide_rank: float


@dataclass(frozen=True)
class RegionScores:
    tiles: int
    scores: tuple[Score, ...]
    source: Path

    def describe(self) -> str:
        """Return one line for the model and the pathologist."""
        parts = [f"{s.name} mean {s.mean:.2f}, max {s.max:.2f} (higher than {100 * s.slide_rank:.0f}% of the slide's tiles)"
                 for s in self.scores]
        return f"Analysis of the {self.tiles} tiles in this region: " + "; ".join(parts) + "."

    def to_dict(self) -> dict[str, object]:
        return {"tiles": self.tiles, "source": str(self.source),
                "scores": {s.name: {"mean": s.mean, "max": s.max, "slide_rank": s.slide_rank} for s in self.scores}}


def region_scores(tiles_h5: str | os.PathLike, box: tuple[int, int, int, int],
                  quickhash: str | None = None) -> RegionScores | None:
    """Return the scores of the tiles overlapping ``box`` (level-0 x, y, w, h), or None."""
    path = Path(tiles_h5)
    if not path.is_file():
        return None
    import h5py

    try:
        with h5py.File(path, "r") as f:
            stored_hash = f.attrs.get("slide_quickhash")
            if quickhash and stored_hash is not None and _text(stored_hash) != quickhash:
                return None
            coords = np.asarray(f["coords"][:], np.int64)
            patch = int(f.attrs.get("patch_size_level0", 0))
            if coords.ndim != 2 or len(coords) == 0 or patch <= 0:
                return None
            x, y, w, h = box
            inside = ((coords[:, 0] < x + w) & (coords[:, 0] + patch > x)
                      & (coords[:, 1] < y + h) & (coords[:, 1] + patch > y))
            if not inside.any():
                return None
            scores = [_score(name, np.asarray(ds[:], np.float64), inside)
                      for name, ds in _score_datasets(f, len(coords))]
    except (OSError, KeyError, ValueError, TypeError):
        return None
    scores = [s for s in scores if s is not None]
    return RegionScores(int(inside.sum()), tuple(scores), path) if scores else None


def _score_datasets(f, n: int) -> list[tuple[str, object]]:
    import h5py

    found: list[tuple[str, object]] = []

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset) and obj.shape == (n,) and obj.dtype.kind in "fiu" \
                and name.split("/")[-1] not in _NOT_SCORES:
            found.append((name.replace("/", " "), obj))

    f.visititems(visit)
    return found


def _score(name: str, values: np.ndarray, inside: np.ndarray) -> Score | None:
    region = values[inside]
    region = region[np.isfinite(region)]
    everywhere = values[np.isfinite(values)]
    if region.size == 0:
        return None
    top = float(region.max())
    return Score(name, float(region.mean()), top, float((everywhere < top).mean()))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
