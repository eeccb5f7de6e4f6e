"""The per-slide feature store, ``tiles.h5``: written as tiles are encoded, committed atomically.

Layout (../shared/DESIGN.md, readable as CLAM / TRIDENT feature files read):

- ``coords`` (N, 2) int64: level-0 top-left corner (x, y) of each tile;
- ``features`` (N, D) float32: the encoder's embedding of each tile;
- ``tissue`` (N,) float32: tissue fraction of each tile;
- attrs ``patch_size``, ``patch_size_level0``, ``mpp``, ``level0_mpp``, ``mpp_source``,
  ``encoder``, ``slide_quickhash``, ``pathview_version`` (and ``feature_dim``,
  ``slide_name``, ``tile_order``);
- ``coords`` itself carries TRIDENT's attrs (``patch_size``, ``patch_size_level0``,
  ``level0_magnification``, ``target_magnification``) for readers that look there;
- ``unreadable_coords`` (K, 2): tiles whose image data could not be decoded (no row).

Rows follow the order tiles were read (blocks of neighbouring tiles), not raster
order: ``coords`` says where each row lies. The file is written under a hidden
temporary name beside the target and renamed when complete, so a ``tiles.h5`` that
exists is always whole; an interrupted run leaves nothing that looks finished.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .. import __version__
from ..slide import Slide, TileGrid
from ..slide.info import objective_from_mpp

TILES_FILE = "tiles.h5"


def store_attrs(slide: Slide, grid: TileGrid, encoder: str, feature_dim: int) -> dict[str, Any]:
    """Return the attrs of a slide's ``tiles.h5``."""
    return {
        "patch_size": int(grid.patch_size),
        "patch_size_level0": int(grid.patch_size_level0),
        "mpp": float(grid.mpp),
        "level0_mpp": float(grid.level0_mpp),
        "mpp_source": slide.info.mpp_source,
        "encoder": encoder,
        "feature_dim": int(feature_dim),
        "slide_quickhash": slide.info.quickhash,
        "slide_name": Path(slide.info.path).name,
        "pathview_version": __version__,
        "tile_order": "reading",
    }


def coords_attrs(slide: Slide, grid: TileGrid) -> dict[str, Any]:
    """Attrs TRIDENT-style readers look for on the ``coords`` dataset itself (``coords.attrs[...]``)."""
    level0_mag = slide.info.objective_power or objective_from_mpp(grid.level0_mpp)
    return {
        "patch_size": int(grid.patch_size),
        "patch_size_level0": int(grid.patch_size_level0),
        "level0_magnification": float(level0_mag),
        "target_magnification": float(level0_mag * grid.level0_mpp / grid.mpp),
        "overlap": 0,  # tiles side by side
        "name": Path(slide.info.path).stem,
    }


class TileStoreWriter:
    """Stream rows into a new ``tiles.h5``; :meth:`commit` renames it into place, :meth:`abort` removes it.

    Tiles that could not be read are announced with :meth:`skip`: they get no row, and
    their places go to ``unreadable_coords`` (always present, (0, 2) when every tile read).
    """

    def __init__(self, path: str | os.PathLike, n_tiles: int, feature_dim: int, attrs: dict[str, Any],
                 chunk_rows: int = 1024, coords_attrs: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}")
        self.n_tiles = n_tiles
        self.rows = 0
        self.skipped: list[np.ndarray] = []
        self._h5 = h5py.File(self.tmp, "w")
        rows = max(1, min(chunk_rows, n_tiles))  # resizable (chunked), in case tiles are skipped
        self._coords = self._h5.create_dataset("coords", (n_tiles, 2), dtype="int64", maxshape=(None, 2),
                                               chunks=(rows, 2))
        self._tissue = self._h5.create_dataset("tissue", (n_tiles,), dtype="float32", maxshape=(None,),
                                               chunks=(rows,))
        self._features = self._h5.create_dataset("features", (n_tiles, feature_dim), dtype="float32",
                                                 maxshape=(None, feature_dim), chunks=(rows, feature_dim))
        for key, value in attrs.items():
            self._h5.attrs[key] = value
        for key, value in (coords_attrs or {}).items():
            self._coords.attrs[key] = value

    def append(self, coords: np.ndarray, tissue: np.ndarray, features: np.ndarray) -> None:
        """Write the next ``len(coords)`` rows."""
        n = len(coords)
        if self.rows + n > self.n_tiles:
            raise ValueError(f"more rows than the {self.n_tiles} announced")
        sl = slice(self.rows, self.rows + n)
        self._coords[sl] = coords
        self._tissue[sl] = tissue
        self._features[sl] = features
        self.rows += n

    def skip(self, coords: np.ndarray) -> None:
        """Leave out the tiles at ``coords`` (unreadable): they count as done but get no row."""
        self.skipped.append(np.asarray(coords, np.int64).reshape(-1, 2))

    def commit(self) -> Path:
        """Close the file and move it into place; every announced row must be written or skipped."""
        unreadable = np.concatenate(self.skipped) if self.skipped else np.empty((0, 2), np.int64)
        if self.rows + len(unreadable) != self.n_tiles:
            self.abort()
            raise ValueError(f"only {self.rows} of {self.n_tiles} rows were written")
        if len(unreadable):
            for ds in (self._coords, self._tissue, self._features):
                ds.resize(self.rows, axis=0)
        self._h5.create_dataset("unreadable_coords", data=unreadable)
        self._h5.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file; the target is left as it was."""
        try:
            self._h5.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> TileStoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self.tmp.exists():
            self.abort()


@dataclass(frozen=True)
class TileStore:
    """A ``tiles.h5`` read into memory."""

    coords: np.ndarray
    features: np.ndarray
    tissue: np.ndarray
    attrs: dict[str, Any]
    unreadable_coords: np.ndarray = field(default_factory=lambda: np.empty((0, 2), np.int64))

    def __len__(self) -> int:
        return len(self.coords)


def read_tile_store(path: str | os.PathLike) -> TileStore:
    """Read a ``tiles.h5`` (the file, or the folder that holds it)."""
    p = Path(path)
    if p.is_dir():
        p = p / TILES_FILE
    with h5py.File(p, "r") as f:
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        unreadable = f["unreadable_coords"][:] if "unreadable_coords" in f else np.empty((0, 2), np.int64)
        return TileStore(f["coords"][:], f["features"][:], f["tissue"][:], attrs, unreadable)
