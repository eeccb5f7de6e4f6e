"""Direct JPEG tile decoding for TIFF-based slides: the fast path under OpenSlide.

Most slides (Aperio SVS, generic tiled TIFF, the demo) store JPEG tiles in TIFF
pages. Decoding those tiles straight into RGB with libjpeg-turbo (through Pillow) skips
OpenSlide's ARGB compositing and conversions, and Pillow's ``draft`` lets libjpeg
decode at 1/2, 1/4 or 1/8 scale in the DCT domain: reading a 40x slide at 20x decodes
a quarter of the pixels. Levels whose pages are not plain JPEG tiles stay with OpenSlide.
"""

from __future__ import annotations

import io
import math
import threading
from pathlib import Path

import numpy as np
from PIL import Image

#: OpenSlide vendors whose levels are TIFF pages we can map one to one.
TIFF_VENDORS = {"aperio", "generic-tiff"}
_JPEG = 7


class JpegTileLevels:
    """Maps OpenSlide levels to JPEG-tiled TIFF pages and decodes regions from them."""

    def __init__(self, path: Path, level_dimensions: tuple[tuple[int, int], ...]) -> None:
        import tifffile

        self.path = path
        self._local = threading.local()
        self.pages: dict[int, _Page] = {}
        with tifffile.TiffFile(path) as tif:
            for level, (w, h) in enumerate(level_dimensions):
                for page in tif.pages:
                    if (page.is_tiled and page.compression == _JPEG and page.planarconfig == 1
                            and (page.imagewidth, page.imagelength) == (w, h) and page.samplesperpixel == 3
                            and page.photometric in (2, 6)):  # RGB or YCbCr JPEG
                        self.pages[level] = _Page(page)
                        break

    def has_level(self, level: int) -> bool:
        return level in self.pages

    def _file(self):
        f = getattr(self._local, "file", None)
        if f is None:
            f = self._local.file = open(self.path, "rb")
        return f

    def read(self, level: int, x: int, y: int, w: int, h: int, scale: int = 1) -> np.ndarray:
        """Return level pixels [x, x+w) x [y, y+h) decoded at 1/``scale`` (1, 2, 4 or 8).

        The result is (ceil(h/scale), ceil(w/scale), 3); outside the image is white.
        Raises OSError (or ValueError) when a tile cannot be decoded.
        """
        page = self.pages[level]
        tw, th = page.tile_w, page.tile_h
        sw, sh = -(-tw // scale), -(-th // scale)  # decoded tile size
        c0, r0 = max(0, x // tw), max(0, y // th)
        c1 = min(page.cols - 1, (x + w - 1) // tw)
        r1 = min(page.rows - 1, (y + h - 1) // th)
        ox, oy = (x - c0 * tw) // scale, (y - r0 * th) // scale  # crop offset in the mosaic
        out_w, out_h = -(-w // scale), -(-h // scale)
        if c1 < c0 or r1 < r0:
            return np.full((out_h, out_w, 3), 255, np.uint8)
        mosaic = np.full(((r1 - r0 + 1) * sh, (c1 - c0 + 1) * sw, 3), 255, np.uint8)
        f = self._file()
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                tile = page.decode(f, r * page.cols + c, scale)
                mosaic[(r - r0) * sh:(r - r0) * sh + tile.shape[0], (c - c0) * sw:(c - c0) * sw + tile.shape[1]] = tile
        # Blank the part beyond the image edge (edge tiles are padded in the file).
        right, bottom = -(-(page.width - c0 * tw) // scale), -(-(page.height - r0 * th) // scale)
        mosaic[:, right:] = 255
        mosaic[bottom:, :] = 255
        out = np.full((out_h, out_w, 3), 255, np.uint8)
        if ox < 0 or oy < 0:  # region starts left of / above the image
            dx, dy = max(0, -ox), max(0, -oy)
            part = mosaic[: out_h - dy, : out_w - dx]
            out[dy:dy + part.shape[0], dx:dx + part.shape[1]] = part
        else:
            part = mosaic[oy:oy + out_h, ox:ox + out_w]
            out[:part.shape[0], :part.shape[1]] = part
        return out


class _Page:
    """One JPEG-tiled TIFF page: tile offsets and the shared JPEG tables."""

    def __init__(self, page) -> None:
        self.width, self.height = page.imagewidth, page.imagelength
        self.tile_w, self.tile_h = page.tilewidth, page.tilelength
        self.cols = math.ceil(self.width / self.tile_w)
        self.rows = math.ceil(self.height / self.tile_h)
        self.offsets = np.asarray(page.dataoffsets, np.int64)
        self.counts = np.asarray(page.databytecounts, np.int64)
        tables = page.jpegtables
        self.tables = bytes(tables[:-2]) if tables else b""  # without its EOI marker
        self.rgb = page.photometric == 2  # Aperio's RGB-tagged JPEG: no colour transform

    def decode(self, f, index: int, scale: int) -> np.ndarray:
        f.seek(int(self.offsets[index]))
        data = f.read(int(self.counts[index]))
        if not data:
            raise OSError(f"tile {index} is empty")
        if self.tables:
            data = self.tables + data[2:]  # tables + tile without its SOI
        img = Image.open(io.BytesIO(data))
        # Aperio's RGB-tagged JPEG stores RGB: asking for "YCbCr" keeps the values untransformed.
        size = (self.tile_w // scale, self.tile_h // scale) if scale > 1 else None
        img.draft("YCbCr" if self.rgb else "RGB", size)
        img.load()
        return np.asarray(img.convert("RGB") if img.mode not in ("RGB", "YCbCr") else img)[..., :3]
