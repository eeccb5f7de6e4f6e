"""Open a slide and read its pixels: the one reader the viewer, encoders and scanner share.

OpenSlide does the decoding. This module adds what a workstation needs on top:
typed errors, a pixel-size override for slides that record none, reads at a target
mpp with exact geometry, and recovery from OpenSlide's sticky error state (after one
failed read a handle fails every later read, so a bad tile would poison the rest).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from pathlib import Path

import numpy as np
import openslide
from PIL import Image

from ..errors import (
    CorruptSlideError,
    InvalidMppError,
    MissingMppError,
    RegionReadError,
    SlideNotFoundError,
    SlidePermissionError,
    UnsupportedFormatError,
)
from .info import SlideInfo, objective_from_mpp
from .jpeg_tiles import TIFF_VENDORS, JpegTileLevels

#: Plain images opened through Pillow when OpenSlide declines them.
PLAIN_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
#: A level counts as "at least as fine as asked" within this relative slack (2.0001 ~ 2).
_LEVEL_SLACK = 1.01
#: Colour drawn where a slide's pixels cannot be decoded (not tissue, visibly not glass).
DAMAGED_RGB = (215, 215, 215)

Image.MAX_IMAGE_PIXELS = 2_000_000_000  # plain images can be big scans; no bomb warning


#: Files that are slides of their own: a folder holding one is not a single DICOM series.
_OTHER_SLIDE_SUFFIXES = {".svs", ".ndpi", ".mrxs", ".scn", ".bif", ".tif", ".tiff", ".vms", ".vmu", ".svslide"}


def resolve_slide_path(path: str | os.PathLike) -> Path:
    """Return the file OpenSlide should open for ``path`` (a DICOM folder opens from one file)."""
    p = Path(path)
    if not p.exists():
        raise SlideNotFoundError(p)
    if p.is_dir():
        dcm = sorted(p.glob("*.dcm"), key=lambda f: f.stat().st_size, reverse=True)
        if not dcm:
            raise UnsupportedFormatError(p, "folder holds no DICOM (.dcm) files")
        if any(c.is_dir() or c.suffix.lower() in _OTHER_SLIDE_SUFFIXES for c in p.iterdir()):
            raise UnsupportedFormatError(p, "a folder of several slides, not one DICOM slide: give one file, "
                                            "or scan the folder with `pathview scan`")
        return dcm[0]
    if not os.access(p, os.R_OK):
        raise SlidePermissionError(p)
    return p


def _open_backend(path: Path) -> openslide.AbstractSlide:
    """Open ``path`` with OpenSlide, falling back to Pillow for plain images."""
    try:
        return openslide.OpenSlide(path)
    except openslide.OpenSlideUnsupportedFormatError:
        if path.suffix.lower() in PLAIN_IMAGE_SUFFIXES:
            try:
                return openslide.ImageSlide(path)
            except Exception:  # Pillow raises many types; the diagnosis below names the cause
                pass
        raise _diagnose_refusal(path) from None
    except openslide.OpenSlideError as exc:
        cause = re.sub(r"^Reading .*?: ", "", str(exc))
        raise CorruptSlideError(path, f"file is damaged or incomplete ({cause})") from None
    except PermissionError:
        raise SlidePermissionError(path) from None


def _diagnose_refusal(path: Path) -> CorruptSlideError | UnsupportedFormatError:
    """Tell a truncated or damaged slide from a file that is simply not a slide."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        magic = f.read(4)
    if size == 0:
        return CorruptSlideError(path, "file is empty")
    if magic[:2] in (b"II", b"MM"):
        import logging

        import tifffile

        logging.getLogger("tifffile").setLevel(logging.CRITICAL)  # we report the cause ourselves
        try:
            with tifffile.TiffFile(path) as tif:
                if len(tif.pages) == 0:
                    return CorruptSlideError(path, "file is truncated: its first image directory lies past the end")
                end = max(
                    (o + n for page in tif.pages for o, n in zip(page.dataoffsets, page.databytecounts)),
                    default=0,
                )
        except Exception:
            return CorruptSlideError(path, "file is truncated or damaged (its TIFF structure is unreadable)")
        if end > size:
            return CorruptSlideError(path, f"file is truncated: {size} bytes, pixel data runs to {end}")
        return UnsupportedFormatError(
            path, "a TIFF that OpenSlide 4 does not support (e.g. multiplexed QPTIFF, or not tiled)"
        )
    vendor = openslide.OpenSlide.detect_format(path)
    if vendor:
        return CorruptSlideError(path, f"looks like a {vendor} slide but is truncated or damaged")
    return UnsupportedFormatError(path, "not a slide format OpenSlide 4 can read")


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rgba_to_rgb(rgba: np.ndarray) -> np.ndarray:
    """Composite OpenSlide's RGBA (transparent outside the scanned area) onto white."""
    alpha = rgba[..., 3]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgba[..., :3])
    a = alpha[..., None].astype(np.uint16)
    rgb = (rgba[..., :3].astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
    return rgb.astype(np.uint8)


class Slide:
    """An opened whole-slide image. Thread-safe: many threads may read at once."""

    def __init__(self, path: str | os.PathLike, mpp: float | None = None) -> None:
        self.path = resolve_slide_path(path)
        self._handle = _open_backend(self.path)
        self._reopen_lock = threading.Lock()
        self.info = self._read_info(mpp)
        self._jpeg = self._jpeg_fast_path()

    def _jpeg_fast_path(self) -> JpegTileLevels | None:
        """Return direct JPEG tile access where the slide's levels are plain JPEG-tiled TIFF pages."""
        if self.info.vendor not in TIFF_VENDORS:
            return None
        try:
            levels = JpegTileLevels(self.path, self.info.level_dimensions)
        except Exception:  # an odd TIFF: OpenSlide alone reads it
            return None
        return levels if levels.pages else None

    # -- metadata ---------------------------------------------------------------------------
    def _read_info(self, mpp_override: float | None) -> SlideInfo:
        h = self._handle
        props = dict(h.properties)
        slide_mpp = None
        try:
            mx = float(props[openslide.PROPERTY_NAME_MPP_X])
            my = float(props.get(openslide.PROPERTY_NAME_MPP_Y, mx))
            if mx > 0 and my > 0:
                slide_mpp = (mx + my) / 2
        except (KeyError, ValueError):
            pass
        if mpp_override is not None:
            if not mpp_override > 0:
                raise InvalidMppError(mpp_override)
            mpp, mpp_source = float(mpp_override), "user"
        elif slide_mpp is not None:
            mpp, mpp_source = slide_mpp, "slide"
        else:
            mpp, mpp_source = None, "none"

        objective, objective_source = None, "none"
        try:
            objective = float(props[openslide.PROPERTY_NAME_OBJECTIVE_POWER])
            objective_source = "slide"
        except (KeyError, ValueError):
            if mpp is not None:
                objective, objective_source = objective_from_mpp(mpp), "derived from mpp"

        if isinstance(h, openslide.ImageSlide):
            vendor, quickhash = "image", _file_hash(self.path)
        else:
            vendor = props.get(openslide.PROPERTY_NAME_VENDOR, "unknown")
            quickhash = props.get(openslide.PROPERTY_NAME_QUICKHASH1) or _file_hash(self.path)
        return SlideInfo(
            path=str(self.path),
            vendor=vendor,
            dimensions=tuple(h.dimensions),
            level_dimensions=tuple(tuple(d) for d in h.level_dimensions),
            level_downsamples=tuple(float(d) for d in h.level_downsamples),
            mpp=mpp,
            mpp_source=mpp_source,
            objective_power=objective,
            objective_source=objective_source,
            quickhash=quickhash,
            associated_images=tuple(sorted(h.associated_images.keys())),
            has_icc_profile=self.icc_profile is not None,
            properties=props,
        )

    @property
    def dimensions(self) -> tuple[int, int]:
        return self.info.dimensions

    @property
    def level_count(self) -> int:
        return self.info.level_count

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        return self.info.level_dimensions

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        return self.info.level_downsamples

    @property
    def mpp(self) -> float | None:
        return self.info.mpp

    @property
    def quickhash(self) -> str:
        return self.info.quickhash

    def require_mpp(self) -> float:
        """Return the pixel size, or raise :class:`MissingMppError` naming the slide."""
        if self.info.mpp is None:
            raise MissingMppError(self.path)
        return self.info.mpp

    @property
    def icc_profile(self) -> bytes | None:
        """Return the embedded ICC colour profile as bytes, if the slide has one."""
        profile = getattr(self._handle, "color_profile", None)
        return profile.tobytes() if profile is not None else None

    def associated_image(self, name: str) -> Image.Image:
        """Return an associated image (``label``, ``macro``, ``thumbnail``) as RGB."""
        img = self._handle.associated_images[name]
        return _flatten(img)

    def thumbnail(self, max_size: int = 1024) -> Image.Image:
        """Return an RGB overview that fits in ``max_size`` x ``max_size``."""
        w, h = self.dimensions
        scale = max_size / max(w, h)
        return Image.fromarray(self.overview((max(1, round(w * scale)), max(1, round(h * scale)))))

    def overview(self, out_size: tuple[int, int], chunk: int = 2048) -> np.ndarray:
        """Return the whole slide resampled to ``out_size``, tolerating damaged areas.

        Reads in chunks; a chunk that cannot be decoded is drawn light grey
        (:data:`DAMAGED_RGB`) so one bad tile does not cost the whole overview.
        """
        return self.overview_and_damage(out_size, chunk)[0]

    def overview_and_damage(self, out_size: tuple[int, int], chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Return :meth:`overview` and a boolean mask of its pixels that could not be decoded."""
        w, h = self.dimensions
        ow, oh = out_size
        sx, sy = w / ow, h / oh
        out = np.empty((oh, ow, 3), np.uint8)
        damaged = np.zeros((oh, ow), bool)
        for oy in range(0, oh, chunk):
            for ox in range(0, ow, chunk):
                cw, ch = min(chunk, ow - ox), min(chunk, oh - oy)
                x0, y0 = round(ox * sx), round(oy * sy)
                box = (x0, y0, round((ox + cw) * sx) - x0, round((oy + ch) * sy) - y0)
                try:
                    out[oy:oy + ch, ox:ox + cw] = self.read_scaled(box, (cw, ch))
                except RegionReadError:
                    self._read_damaged(box, out[oy:oy + ch, ox:ox + cw], damaged[oy:oy + ch, ox:ox + cw])
        return out, damaged

    def _read_damaged(self, box: tuple[int, int, int, int], out: np.ndarray, damaged: np.ndarray) -> None:
        """Read a failing box piece by piece into ``out``; a piece that fails is read again from the finer
        levels (a damaged coarse level must not hide tissue the full resolution still holds), and one
        that fails there too is drawn as DAMAGED_RGB and marked in ``damaged``."""
        x, y, w, h = box
        oh, ow = damaged.shape
        step = max(1, min(ow, oh) // 8)
        for oy in range(0, oh, step):
            for ox in range(0, ow, step):
                cw, ch = min(step, ow - ox), min(step, oh - oy)
                x0, y0 = x + round(ox * w / ow), y + round(oy * h / oh)
                x1, y1 = x + round((ox + cw) * w / ow), y + round((oy + ch) * h / oh)
                piece = (x0, y0, max(1, x1 - x0), max(1, y1 - y0))
                try:
                    out[oy:oy + ch, ox:ox + cw] = self.read_scaled(piece, (cw, ch))
                except RegionReadError:
                    pixels = self.read_finer(piece, (cw, ch))
                    out[oy:oy + ch, ox:ox + cw] = DAMAGED_RGB if pixels is None else pixels
                    damaged[oy:oy + ch, ox:ox + cw] = pixels is None

    def read_finer(self, box: tuple[int, int, int, int], out_size: tuple[int, int]) -> np.ndarray | None:
        """Return what :meth:`read_scaled` would, read from the finer levels instead (the next finer first):
        for when the level it chose is damaged. None when every finer level fails too."""
        x, y, w, h = box
        chosen = self.best_level_for_downsample(min(w / out_size[0], h / out_size[1]))
        for level in range(chosen - 1, -1, -1):
            d = self.level_downsamples[level]
            try:
                pixels = self.read_region((x, y), level, (max(1, math.ceil(w / d)), max(1, math.ceil(h / d))))
            except RegionReadError:
                continue
            return np.asarray(Image.fromarray(pixels).resize(out_size, Image.Resampling.BOX))
        return None

    # -- pixels -----------------------------------------------------------------------------
    def best_level_for_downsample(self, downsample: float) -> int:
        """Return the coarsest level that is still at least as fine as ``downsample``."""
        best = 0
        for i, d in enumerate(self.level_downsamples):
            if d <= downsample * _LEVEL_SLACK:
                best = i
        return best

    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
        """Return RGB pixels (h, w, 3) of ``size`` at ``level``, top-left at level-0 ``location``."""
        x, y = int(location[0]), int(location[1])
        w, h = int(size[0]), int(size[1])
        if w <= 0 or h <= 0:
            raise ValueError(f"region size must be positive, got {w}x{h}")
        if self._jpeg is not None and self._jpeg.has_level(level):
            d = self.level_downsamples[level]
            return self._read_jpeg(level, (x, y, w, h), round(x / d), round(y / d), w, h, 1)
        for attempt in range(2):
            handle = self._handle
            try:
                rgba = handle.read_region((x, y), level, (w, h))
                return rgba_to_rgb(np.asarray(rgba))
            except openslide.OpenSlideError as exc:
                # The handle is now in OpenSlide's sticky error state: replace it so other
                # reads recover, then retry once (a transient failure reads on the new one).
                self._reopen(handle)
                if attempt == 1:
                    raise RegionReadError(self.path, (x, y, w, h), level, str(exc)) from None
        raise AssertionError("unreachable")

    def _read_jpeg(self, level: int, region: tuple[int, int, int, int], lx: int, ly: int,
                   w: int, h: int, scale: int) -> np.ndarray:
        try:
            return self._jpeg.read(level, lx, ly, w, h, scale)
        except (OSError, ValueError, SyntaxError) as exc:
            raise RegionReadError(self.path, region, level, f"damaged JPEG tile ({exc})") from None

    def read_scaled(self, box: tuple[int, int, int, int], out_size: tuple[int, int]) -> np.ndarray:
        """Return the level-0 ``box`` (x, y, w, h) resampled to ``out_size`` (w, h) RGB pixels.

        Reads the pyramid level closest above the requested resolution and resizes once;
        JPEG-tiled levels are decoded at 1/2 or 1/4 scale where that still suffices.
        """
        x, y, w, h = box
        ow, oh = out_size
        downsample = min(w / ow, h / oh)
        level = self.best_level_for_downsample(downsample)
        d = self.level_downsamples[level]
        lw, lh = max(1, math.ceil(w / d)), max(1, math.ceil(h / d))
        scale, fx, fy = 1, 0.0, 0.0
        if self._jpeg is not None and self._jpeg.has_level(level):
            while scale < 4 and downsample / d >= 2 * scale * 0.999:  # 1/8 (DC only) is too coarse
                scale *= 2
            # Start on a multiple of the decode scale; keep the remainder for the crop below.
            lx, ly = x / d, y / d
            ax, ay = math.floor(lx / scale) * scale, math.floor(ly / scale) * scale
            fx, fy = (lx - ax) / scale, (ly - ay) / scale
            pixels = self._read_jpeg(level, box, ax, ay, math.ceil(lx + w / d) - ax, math.ceil(ly + h / d) - ay, scale)
        else:
            pixels = self.read_region((x, y), level, (lw, lh))
        if pixels.shape[:2] == (oh, ow) and fx == fy == 0.0:
            return pixels
        # Crop to the exact box (ceil may have added part of a pixel) and resize once.
        crop = (fx, fy, min(fx + w / d / scale, pixels.shape[1]), min(fy + h / d / scale, pixels.shape[0]))
        img = Image.fromarray(pixels).resize((ow, oh), Image.Resampling.BILINEAR, box=crop)
        return np.asarray(img)

    def read_region_at_mpp(self, location: tuple[int, int], size: tuple[int, int], mpp: float) -> np.ndarray:
        """Return ``size`` pixels at ``mpp`` µm/px whose top-left is level-0 ``location``."""
        scale = mpp / self.require_mpp()
        w, h = size
        box = (int(location[0]), int(location[1]), round(w * scale), round(h * scale))
        return self.read_scaled(box, (w, h))

    # -- lifecycle --------------------------------------------------------------------------
    def _reopen(self, failed: openslide.AbstractSlide) -> None:
        with self._reopen_lock:
            if self._handle is failed:  # another thread may have reopened already
                # Readers still holding the old handle keep it alive; it closes when dropped.
                self._handle = _open_backend(self.path)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Slide({str(self.path)!r})"


def _flatten(img: Image.Image) -> Image.Image:
    if img.mode == "RGBA":
        return Image.fromarray(rgba_to_rgb(np.asarray(img)))
    return img.convert("RGB")


def open_slide(path: str | os.PathLike, mpp: float | None = None) -> Slide:
    """Open a slide file, DICOM folder or plain image; ``mpp`` overrides the recorded pixel size."""
    return Slide(path, mpp=mpp)
