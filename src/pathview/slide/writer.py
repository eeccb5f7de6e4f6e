"""Write pyramidal, JPEG-tiled slides in the Aperio SVS layout that OpenSlide reads.

Used for the built-in demo slide and for benchmark slides; pathview never writes
beside a user's slide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

TILE = 256


def write_svs(
    path: str | Path,
    level_shapes: list[tuple[int, int]],
    level_tiles: Callable[[int], Iterator[np.ndarray]],
    mpp: float,
    magnification: float,
    thumbnail: Image.Image,
    associated: dict[str, Image.Image] | None = None,
    quality: int = 85,
) -> Path:
    """Write an SVS file; ``level_tiles(i)`` yields level i's 256-px RGB tiles row by row.

    ``level_shapes`` are (height, width) per level, finest first. The file is written to
    a temporary name and renamed, so a reader never sees half a slide.
    """
    import tifffile

    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    h0, w0 = level_shapes[0]
    head = f"Aperio Image Library pathview\r\n{w0}x{h0} ({TILE}x{TILE}) JPEG/RGB Q={quality}"
    desc = f"{head}|AppMag = {magnification:g}|MPP = {mpp:g}"
    jpeg = {"compression": "jpeg", "compressionargs": {"level": quality}, "photometric": "rgb"}
    with tifffile.TiffWriter(tmp, bigtiff=True) as tif:
        for i, (h, w) in enumerate(level_shapes):
            tif.write(level_tiles(i), shape=(h, w, 3), dtype=np.uint8, tile=(TILE, TILE),
                      description=desc, metadata=None, **jpeg)
            if i == 0:
                thumb = np.asarray(thumbnail.convert("RGB"))
                tif.write(thumb, description=f"Aperio Image Library pathview\n{w0}x{h0} -> "
                          f"{thumb.shape[1]}x{thumb.shape[0]}", metadata=None, **jpeg)
        for name, img in (associated or {}).items():
            arr = np.asarray(img.convert("RGB"))
            kind = {"label": 1, "macro": 9}.get(name, 0)
            tif.write(arr, description=f"Aperio Image Library pathview\n{name} {arr.shape[1]}x{arr.shape[0]}",
                      subfiletype=kind, compression="lzw", photometric="rgb", metadata=None)
    tmp.replace(path)
    return path


def tiles_of(image: np.ndarray, background: int = 255) -> Iterator[np.ndarray]:
    """Yield an in-memory RGB image as 256-px tiles, row by row, padding the edges."""
    h, w = image.shape[:2]
    for y in range(0, h, TILE):
        for x in range(0, w, TILE):
            tile = image[y:y + TILE, x:x + TILE]
            if tile.shape[:2] != (TILE, TILE):
                padded = np.full((TILE, TILE, 3), background, np.uint8)
                padded[:tile.shape[0], :tile.shape[1]] = tile
                tile = padded
            yield tile


def pyramid_shapes(width: int, height: int, factor: int = 4, min_side: int = 256) -> list[tuple[int, int]]:
    """Return (height, width) per level, each ``factor`` times smaller, down to ``min_side``."""
    shapes = [(height, width)]
    while max(shapes[-1]) // factor >= min_side:
        h, w = shapes[-1]
        shapes.append((h // factor, w // factor))
    return shapes


def write_image_svs(path: str | Path, image: np.ndarray, mpp: float, magnification: float = 20,
                    associated: Callable[[np.ndarray], dict[str, Image.Image]] | None = None) -> Path:
    """Write an in-memory RGB image as a pyramidal SVS (box-filtered levels, a 768-px thumbnail).

    ``associated`` receives the smallest level and returns extra images (label, macro) to store.
    """
    h, w = image.shape[:2]
    shapes = pyramid_shapes(w, h)
    levels = [image]
    for lh, lw in shapes[1:]:
        levels.append(np.asarray(Image.fromarray(levels[-1]).resize((lw, lh), Image.Resampling.BOX)))
    thumb = Image.fromarray(levels[-1]).copy()
    thumb.thumbnail((768, 768))
    return write_svs(path, shapes, lambda i: tiles_of(levels[i]), mpp=mpp, magnification=magnification,
                     thumbnail=thumb, associated=associated(levels[-1]) if associated else None)
