"""Slide core: open slides, read regions, cache tiles, find tissue, lay tile grids. No Qt here."""

from __future__ import annotations

from .cache import TileCache
from .grid import TileGrid, tile_grid
from .info import SlideInfo
from .reader import Slide, open_slide
from .tissue import TissueMask, detect_tissue

__all__ = ["Slide", "SlideInfo", "TileCache", "TileGrid", "TissueMask", "detect_tissue", "open_slide", "tile_grid"]
