"""Display tiles of a slide, decoded on demand and kept in a byte-bounded cache."""

from __future__ import annotations

import numpy as np

from .errors import RegionReadError
from .slide.cache import TileCache
from .slide.reader import DAMAGED_RGB, Slide
from .viewport import DISPLAY_TILE, TileKey


class TileSource:
    """Reads display tiles of one slide; thread-safe; a damaged tile comes back grey, not as an error."""

    def __init__(self, slide: Slide, cache_bytes: int = 512 * 1024 * 1024) -> None:
        self.slide = slide
        self.cache = TileCache(cache_bytes)
        self.damaged: set[TileKey] = set()

    def level_size(self, level: int) -> tuple[int, int]:
        return self.slide.level_dimensions[level]

    def cached(self, key: TileKey) -> np.ndarray | None:
        return self.cache.get(key)

    def load(self, key: TileKey) -> np.ndarray:
        """Return the tile's RGB pixels, decoding it if it is not cached."""
        tile = self.cache.get(key)
        if tile is not None:
            return tile
        d = self.slide.level_downsamples[key.level]
        lw, lh = self.level_size(key.level)
        w = min(DISPLAY_TILE, lw - key.col * DISPLAY_TILE)
        h = min(DISPLAY_TILE, lh - key.row * DISPLAY_TILE)
        x0 = round(key.col * DISPLAY_TILE * d)
        y0 = round(key.row * DISPLAY_TILE * d)
        try:
            tile = self.slide.read_region((x0, y0), key.level, (w, h))
        except RegionReadError:
            self.damaged.add(key)
            tile = np.empty((h, w, 3), np.uint8)
            tile[:] = DAMAGED_RGB
        self.cache.put(key, tile)
        return tile
