"""Viewport geometry shared by the window and headless rendering (no I/O, no Qt).

A view is a level-0 point at the centre of the screen and a downsample: how many
level-0 pixels one screen pixel spans. It is shown with tiles of one pyramid level,
the coarsest that is still at least as fine as the screen (so the screen only ever
shrinks pixels: sharp, never blurry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

#: Display tile side in pixels of its level (ASAP uses 512; clinicians prefer large tiles).
DISPLAY_TILE = 512
#: Magnification presets on the number keys 1-6.
PRESETS = (1.25, 2.5, 5.0, 10.0, 20.0, 40.0)


@dataclass(frozen=True)
class TileKey:
    """One display tile: ``level`` and its column/row in that level's 512-px grid."""

    level: int
    col: int
    row: int


@dataclass(frozen=True)
class Viewport:
    """What the screen shows: ``center`` (level-0 x, y), ``downsample``, screen ``width`` x ``height``."""

    cx: float
    cy: float
    downsample: float
    width: int
    height: int

    @property
    def x0(self) -> float:
        return self.cx - self.width * self.downsample / 2

    @property
    def y0(self) -> float:
        return self.cy - self.height * self.downsample / 2

    def to_level0(self, sx: float, sy: float) -> tuple[float, float]:
        """Return the level-0 point under screen point (sx, sy)."""
        return self.x0 + sx * self.downsample, self.y0 + sy * self.downsample

    def to_screen(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.x0) / self.downsample, (y - self.y0) / self.downsample

    def zoomed(self, factor: float, anchor: tuple[float, float] | None = None,
               limits: tuple[float, float] = (0.05, 1e6)) -> Viewport:
        """Return the view zoomed in by ``factor`` keeping the screen point ``anchor`` fixed."""
        ds = min(max(self.downsample / factor, limits[0]), limits[1])
        if anchor is None:
            return replace(self, downsample=ds)
        ax, ay = self.to_level0(*anchor)
        k = ds / self.downsample
        return replace(self, cx=ax + (self.cx - ax) * k, cy=ay + (self.cy - ay) * k, downsample=ds)

    def panned(self, dx_screen: float, dy_screen: float) -> Viewport:
        return replace(self, cx=self.cx + dx_screen * self.downsample, cy=self.cy + dy_screen * self.downsample)

    def resized(self, width: int, height: int) -> Viewport:
        return replace(self, width=max(1, width), height=max(1, height))

    def framing(self, box: tuple[float, float, float, float], margin: float = 1.0,
                closest: float = 0.0) -> Viewport:
        """Return the view of this screen size centred on the level-0 ``box`` (x0, y0, x1, y1), showing
        all of it with ``margin`` to spare, but never zoomed in past downsample ``closest``."""
        x0, y0, x1, y1 = box
        ds = max((x1 - x0) / self.width, (y1 - y0) / self.height) * margin
        return replace(self, cx=(x0 + x1) / 2, cy=(y0 + y1) / 2, downsample=max(ds, closest))


def fit_viewport(dimensions: tuple[int, int], width: int, height: int, margin: float = 1.02) -> Viewport:
    """Return the view that shows the whole slide in a width x height screen."""
    w, h = dimensions
    ds = max(w / max(width, 1), h / max(height, 1)) * margin
    return Viewport(w / 2, h / 2, ds, width, height)


def display_level(downsamples: tuple[float, ...], downsample: float) -> int:
    """Return the coarsest level at least as fine as ``downsample`` (1% slack)."""
    best = 0
    for i, d in enumerate(downsamples):
        if d <= downsample * 1.01:
            best = i
    return best


def visible_tiles(view: Viewport, level: int, level_downsample: float,
                  level_size: tuple[int, int], margin: int = 0) -> list[TileKey]:
    """Return the level's display tiles that intersect the view (plus ``margin`` tiles around),
    nearest to the centre first (they are the ones the eye goes to)."""
    span = DISPLAY_TILE * level_downsample
    c0 = max(0, math.floor(view.x0 / span) - margin)
    r0 = max(0, math.floor(view.y0 / span) - margin)
    c1 = min(math.ceil(level_size[0] / DISPLAY_TILE) - 1, math.floor((view.x0 + view.width * view.downsample) / span) + margin)
    r1 = min(math.ceil(level_size[1] / DISPLAY_TILE) - 1, math.floor((view.y0 + view.height * view.downsample) / span) + margin)
    keys = [TileKey(level, c, r) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]
    ccol, crow = view.cx / span - 0.5, view.cy / span - 0.5
    keys.sort(key=lambda k: (k.col - ccol) ** 2 + (k.row - crow) ** 2)
    return keys


def tile_rect_level0(key: TileKey, level_downsample: float, level_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Return the level-0 rectangle (x, y, w, h) a display tile covers (edge tiles are smaller)."""
    lw, lh = level_size
    tw = min(DISPLAY_TILE, lw - key.col * DISPLAY_TILE)
    th = min(DISPLAY_TILE, lh - key.row * DISPLAY_TILE)
    d = level_downsample
    return key.col * DISPLAY_TILE * d, key.row * DISPLAY_TILE * d, tw * d, th * d


def magnification_of(downsample: float, mpp: float | None, native_power: float | None) -> float:
    """Return the objective-style magnification a view downsample corresponds to (20x = 0.5 µm/px)."""
    if mpp is not None:
        return 10.0 / (mpp * downsample)
    return (native_power or 40.0) / downsample


def downsample_for(magnification: float, mpp: float | None, native_power: float | None) -> float:
    """Return the view downsample that shows ``magnification``."""
    if mpp is not None:
        return 10.0 / (magnification * mpp)
    return (native_power or 40.0) / magnification
