"""Synthetic artifacts painted into real tissue at known places: ground truth for tests and the benchmark.

Each painter changes an RGB image (level-0 pixels) in place inside a box and returns
the mask of pixels it changed, so the tiles it covers are known exactly. The looks
follow what the artifacts do to light: ink and folds add optical density (a fold is a
second, shifted layer of the same tissue), blur is a wider point-spread function,
bubbles bend light at a grey rim and wash out what lies under them, debris is opaque,
and exposure scales the light.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

Box = tuple[int, int, int, int]  # x, y, w, h in image pixels
PEN_INKS = {"green": (0.30, 0.62, 0.42), "blue": (0.25, 0.35, 0.75), "black": (0.12, 0.12, 0.14)}


def _od(rgb: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(rgb.astype(np.float32), 1.0, 255.0) / 255.0)


def _rgb(od: np.ndarray) -> np.ndarray:
    return np.clip(255.0 * np.exp(-od), 0, 255).astype(np.uint8)


def _canvas(box: Box, draw: Callable[[ImageDraw.ImageDraw], None]) -> np.ndarray:
    img = Image.new("L", (box[2], box[3]), 0)
    draw(ImageDraw.Draw(img))
    return np.asarray(img, np.float32) / 255.0


def _full(image: np.ndarray, box: Box, local: np.ndarray) -> np.ndarray:
    mask = np.zeros(image.shape[:2], bool)
    x, y, w, h = box
    mask[y:y + h, x:x + w] = local > 0.05
    return mask


def pen(image: np.ndarray, box: Box, rng: np.random.Generator, ink: str = "green") -> np.ndarray:
    """Draw a marker stroke along the box (about a third of its height wide), over whatever lies there.

    The box decides the case: one that spans the tissue edge gives ink partly on glass, one
    on solid tissue gives ink wholly over tissue (its hue hidden by the stain beneath).
    """
    x, y, w, h = box
    n = 8
    pts = [(int(w * i / (n - 1)), int(h * (0.5 + 0.18 * np.sin(i * 1.3 + rng.uniform(0, 3))))) for i in range(n)]
    local = _canvas(box, lambda d: d.line(pts, fill=255, width=max(6, h // 3), joint="curve"))
    local = ndimage.gaussian_filter(local, 1.5)
    region = image[y:y + h, x:x + w]
    od = _od(region) + local[..., None] * _od(np.array(PEN_INKS[ink]) * 255.0) * rng.uniform(0.8, 1.1)
    image[y:y + h, x:x + w] = _rgb(od)
    return _full(image, box, local)


def blur(image: np.ndarray, box: Box, rng: np.random.Generator, sigma: float | None = None) -> np.ndarray:
    """Defocus the box (Gaussian point-spread, sigma 2.5-4 px at 0.5 µm/px)."""
    x, y, w, h = box
    s = sigma if sigma is not None else rng.uniform(2.5, 4.0)
    image[y:y + h, x:x + w] = ndimage.gaussian_filter(image[y:y + h, x:x + w].astype(np.float32),
                                                      (s, s, 0)).round().astype(np.uint8)
    return _full(image, box, np.ones((h, w), np.float32))


def fold(image: np.ndarray, box: Box, rng: np.random.Generator) -> np.ndarray:
    """Lay a shifted copy of the tissue over itself in an elliptical band: doubled optical density."""
    x, y, w, h = box
    sy, sx = (int(v) for v in rng.integers(60, 140, size=2))
    region = image[y:y + h, x:x + w]
    uy, ux = int(np.clip(y - sy, 0, image.shape[0] - h)), int(np.clip(x - sx, 0, image.shape[1] - w))
    under = image[uy:uy + h, ux:ux + w].copy()  # the neighbouring tissue, folded over this one
    local = _canvas(box, lambda d: d.ellipse([w * 0.02, h * 0.1, w * 0.98, h * 0.9], fill=255))
    local = ndimage.gaussian_filter(local, 4)
    od = _od(region) + local[..., None] * _od(under) * 1.1
    image[y:y + h, x:x + w] = _rgb(od)
    return _full(image, box, local)


def bubble(image: np.ndarray, box: Box, rng: np.random.Generator) -> np.ndarray:
    """Paint an air bubble: a grey refracting rim and a washed-out, greyed interior."""
    x, y, w, h = box
    r = min(w, h) * 0.47
    cx, cy = w / 2, h / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dist = np.hypot(xx - cx, yy - cy)
    inside = np.clip(r - dist, 0, 1)
    rim = np.exp(-((dist - r + 6) / 5.0) ** 2)
    region = image[y:y + h, x:x + w].astype(np.float32)
    grey = region.mean(-1, keepdims=True)
    washed = 0.35 * region + 0.65 * (0.55 * grey + 0.45 * 200.0)
    out = region * (1 - inside[..., None]) + washed * inside[..., None]
    out = out * (1 - 0.75 * rim[..., None]) + 95.0 * 0.75 * rim[..., None]
    image[y:y + h, x:x + w] = np.clip(out, 0, 255).astype(np.uint8)
    return _full(image, box, np.maximum(inside, rim))


def debris(image: np.ndarray, box: Box, rng: np.random.Generator) -> np.ndarray:
    """Scatter opaque dark particles (dust, pigment, foreign matter) over the box."""
    x, y, w, h = box

    def draw(d: ImageDraw.ImageDraw) -> None:
        for _ in range(int(rng.integers(5, 9))):
            px, py = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
            rx, ry = rng.uniform(0.05, 0.12) * w, rng.uniform(0.05, 0.12) * h
            d.ellipse([px - rx, py - ry, px + rx, py + ry], fill=255)

    local = ndimage.gaussian_filter(_canvas(box, draw), 1.0)
    colour = np.array([35.0, 28.0, 22.0]) * rng.uniform(0.7, 1.3)
    region = image[y:y + h, x:x + w].astype(np.float32)
    image[y:y + h, x:x + w] = (region * (1 - local[..., None]) + colour * local[..., None]).astype(np.uint8)
    return _full(image, box, local)


def overexpose(image: np.ndarray, box: Box, rng: np.random.Generator) -> np.ndarray:
    """Wash the box out: most of the light saturates the sensor."""
    x, y, w, h = box
    keep = rng.uniform(0.15, 0.3)
    region = image[y:y + h, x:x + w].astype(np.float32)
    image[y:y + h, x:x + w] = (255.0 - (255.0 - region) * keep).astype(np.uint8)
    return _full(image, box, np.ones((h, w), np.float32))


def underexpose(image: np.ndarray, box: Box, rng: np.random.Generator) -> np.ndarray:
    """Darken the box: too little light."""
    x, y, w, h = box
    image[y:y + h, x:x + w] = (image[y:y + h, x:x + w].astype(np.float32) * rng.uniform(0.25, 0.4)).astype(np.uint8)
    return _full(image, box, np.ones((h, w), np.float32))


def foreign(image: np.ndarray, box: Box, rng: np.random.Generator, source: np.ndarray) -> np.ndarray:
    """Replace the box with tissue from another slide (``source`` is at least as large as the box)."""
    x, y, w, h = box
    sy = int(rng.integers(0, source.shape[0] - h + 1))
    sx = int(rng.integers(0, source.shape[1] - w + 1))
    image[y:y + h, x:x + w] = source[sy:sy + h, sx:sx + w]
    return _full(image, box, np.ones((h, w), np.float32))


#: Painter per injected kind, and the score that should find it.
PAINTERS: dict[str, Callable[..., np.ndarray]] = {
    "pen": pen, "blur": blur, "fold": fold, "bubble": bubble, "debris": debris,
    "overexposure": overexpose, "underexposure": underexpose, "foreign": foreign,
}
EXPECTED_CLASS: dict[str, str] = {
    "pen": "pen", "blur": "blur", "fold": "fold", "bubble": "bubble", "debris": "debris",
    "overexposure": "exposure", "underexposure": "exposure", "foreign": "outlier",
}


def tile_coverage(mask: np.ndarray, coords: np.ndarray, size: int) -> np.ndarray:
    """Return the fraction of each square tile (level-0 top-left ``coords``) covered by ``mask``."""
    integral = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int64)
    integral[1:, 1:] = mask.cumsum(0).cumsum(1)
    x0 = np.clip(coords[:, 0], 0, mask.shape[1])
    y0 = np.clip(coords[:, 1], 0, mask.shape[0])
    x1 = np.clip(coords[:, 0] + size, 0, mask.shape[1])
    y1 = np.clip(coords[:, 1] + size, 0, mask.shape[0])
    inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return inside / float(size * size)
