"""Read a tile grid fast: one decode per block of tiles, on several threads.

The naive loop calls ``read_region`` once per tile at level 0 and resizes each tile.
Here tiles are grouped into blocks ("supertiles", as hs2p does); each block is read
once from the pyramid level closest above the target resolution, resized once so that
every tile lands on whole pixels, and sliced. OpenSlide releases the GIL while it
decodes, so blocks read in parallel on threads.

A block with damaged image data is read again tile by tile (from a finer level where
the chosen one is damaged): the tiles that still fail come back black and flagged in
``TileBatch.damaged``, so one bad JPEG tile costs the tiles it covers, not the slide.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import RegionReadError
from .grid import TileGrid
from .reader import Slide


@dataclass(frozen=True)
class TileBatch:
    """Tiles read together: ``indices`` into the grid, ``pixels`` (n, size, size, 3) uint8 and, when
    some could not be decoded, ``damaged`` (n,) bool (their pixels are black)."""

    indices: np.ndarray
    pixels: np.ndarray
    damaged: np.ndarray | None = None


def block_groups(grid: TileGrid, block_tiles: int) -> list[np.ndarray]:
    """Group tile indices into square blocks of at most ``block_tiles`` x ``block_tiles`` tiles."""
    if len(grid) == 0:
        return []
    cells = grid.coords // grid.patch_size_level0
    keys = (cells // block_tiles) @ np.array([1, 1 << 32], dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    return np.split(order, bounds)


def read_block(slide: Slide, grid: TileGrid, indices: np.ndarray) -> TileBatch:
    """Read the tiles ``indices`` of ``grid`` with a single region read, resize and slice."""
    return TileBatch(indices, *read_block_at(slide, grid.coords[indices], grid.patch_size_level0, grid.patch_size))


def read_block_at(slide: Slide, coords: np.ndarray, ps0: int, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the tiles at level-0 ``coords`` (n, 2) of ``ps0`` px each as (n, size, size, 3) pixels, one
    read, and the damaged-tile mask (None when every tile decoded)."""
    try:
        return _read_whole_block(slide, coords, ps0, size), None
    except RegionReadError:
        return _read_tile_by_tile(slide, coords, ps0, size)


def _read_tile_by_tile(slide: Slide, coords: np.ndarray, ps0: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    pixels = np.zeros((len(coords), size, size, 3), np.uint8)
    damaged = np.zeros(len(coords), bool)
    for i, (x, y) in enumerate(coords.tolist()):
        try:
            pixels[i] = slide.read_scaled((x, y, ps0, ps0), (size, size))
        except RegionReadError:
            finer = slide.read_finer((x, y, ps0, ps0), (size, size))  # a damaged coarse level: go finer
            if finer is None:
                damaged[i] = True
            else:
                pixels[i] = finer
    return pixels, damaged


def _read_whole_block(slide: Slide, coords: np.ndarray, ps0: int, size: int) -> np.ndarray:
    x0, y0 = coords.min(axis=0)
    x1, y1 = coords.max(axis=0) + ps0
    cols, rows = (x1 - x0) // ps0, (y1 - y0) // ps0
    block = slide.read_scaled((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), (int(cols * size), int(rows * size)))
    offsets = (coords - (x0, y0)) // ps0 * size
    return np.stack([block[oy:oy + size, ox:ox + size] for ox, oy in offsets])


def iter_tiles(slide: Slide, grid: TileGrid, workers: int = 4, block_tiles: int = 8) -> Iterator[TileBatch]:
    """Yield the grid's tiles in blocks, read on ``workers`` threads, in a deterministic order.

    At most ``2 * workers`` blocks are in flight, so memory stays bounded on any slide.
    """
    blocks = block_groups(grid, block_tiles)
    if workers <= 1:
        for idx in blocks:
            yield read_block(slide, grid, idx)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tile-reader") as pool:
        pending = []
        for idx in blocks:
            pending.append(pool.submit(read_block, slide, grid, idx))
            if len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()


def read_tile_naive(slide: Slide, grid: TileGrid, index: int) -> np.ndarray:
    """Read one tile the naive way (level-0 read + resize): the reference for tests and benchmarks."""
    x, y = grid.coords[index]
    ps0, size = grid.patch_size_level0, grid.patch_size
    region = slide.read_region((int(x), int(y)), 0, (ps0, ps0))
    if ps0 == size:
        return region
    return np.asarray(Image.fromarray(region).resize((size, size), Image.Resampling.BILINEAR))
