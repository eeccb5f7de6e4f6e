"""The built-in demo slide: synthetic, H&E-like tissue made by project code.

Lets every command and the viewer be tried on a fresh machine with no data. The
image is rendered by Beer-Lambert mixing of haematoxylin and eosin stain vectors
over procedural fields: tissue sections with smooth edges, fibrous stroma, nuclei
whose density varies (a dense cellular nodule stands out), gland lumens, and a
green pen mark beside the tissue, as slides often have.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .writer import write_image_svs

#: Bumped whenever the rendering changes, so an updated pathview never reuses an older demo slide.
DEMO_VERSION = 2
DEMO_NAME = f"pathview-demo-v{DEMO_VERSION}.svs"
DEMO_MPP = 0.5
DEMO_SIZE = (6144, 4608)  # width, height at 0.5 µm/px: 3.1 x 2.3 mm
# Optical densities per unit stain (Ruifrok & Johnston's H&E vectors), R, G, B.
_OD_H = np.array([0.65, 0.70, 0.29], np.float32) * 1.6
_OD_E = np.array([0.07, 0.99, 0.11], np.float32) * 0.55


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float | tuple[float, float]) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return (field - field.mean()) / (field.std() + 1e-6)


def _upsample(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    img = Image.fromarray(field.astype(np.float32), mode="F")
    return np.asarray(img.resize((shape[1], shape[0]), Image.Resampling.BILINEAR))


def render_demo_tissue(width: int = DEMO_SIZE[0], height: int = DEMO_SIZE[1], seed: int = 7) -> np.ndarray:
    """Return an RGB (height, width, 3) synthetic H&E image at 0.5 µm/px."""
    rng = np.random.default_rng(seed)
    low = (height // 32, width // 32)
    yy, xx = np.mgrid[0:low[0], 0:low[1]].astype(np.float32)
    yy /= low[0]
    xx /= low[1]
    # Two tissue sections: wobbly ellipses.
    wobble = _smooth_noise(rng, low, 6) * 0.12
    a = ((xx - 0.32) / 0.24) ** 2 + ((yy - 0.5) / 0.38) ** 2
    b = ((xx - 0.72) / 0.17) ** 2 + ((yy - 0.45) / 0.3) ** 2
    tissue_low = np.minimum(a, b) + wobble
    cellular_low = 0.35 + 0.25 * _smooth_noise(rng, low, 8)
    nodule = np.exp(-(((xx - 0.28) / 0.07) ** 2 + ((yy - 0.38) / 0.09) ** 2))  # dense cellular focus
    cellular_low = np.clip(cellular_low + 1.6 * nodule, 0.05, 2.0)

    shape = (height, width)
    inside = np.clip((1.0 - _upsample(tissue_low, shape)) * 12.0, 0.0, 1.0)
    cellular = _upsample(cellular_low, shape)

    # Gland lumens: holes where a mid-scale field peaks, away from the nodule.
    lumen_field = _upsample(_smooth_noise(rng, (height // 16, width // 16), 2.5), shape)
    lumen = np.clip((lumen_field - 1.9) * 4.0, 0.0, 1.0) * (cellular < 0.9)
    inside *= 1.0 - lumen

    # Fibrous stroma: anisotropic noise along x, eosin density between 0.5 and 1.
    fibres = _smooth_noise(rng, shape, (1.2, 7.0))
    eosin = inside * (0.75 + 0.25 * np.tanh(fibres))

    # Nuclei: Poisson points, density following cellularity, blurred into round blobs.
    nuclei_per_px = 0.0016
    count = rng.poisson(nuclei_per_px * width * height)
    py = rng.integers(0, height, count)
    px = rng.integers(0, width, count)
    keep = rng.random(count) < np.clip(cellular[py, px] * inside[py, px] / 1.8, 0, 1)
    impulses = np.zeros(shape, np.float32)
    impulses[py[keep], px[keep]] = 1.0
    blobs = ndimage.gaussian_filter(impulses, 3.2) * (2 * np.pi * 3.2 ** 2)
    chromatin = 0.8 + 0.2 * _smooth_noise(rng, shape, 0.8)
    haem = np.clip((blobs - 0.35) * 3.0, 0.0, 1.0) * chromatin + 0.1 * inside

    # The nodule is tumour-like: crowded, large, dark nuclei with little eosinophilic stroma.
    focus = np.clip((_upsample(nodule, shape) - 0.3) * 2.0, 0.0, 1.0) * inside
    big = rng.poisson(0.0011 * width * height)
    by, bx = rng.integers(0, height, big), rng.integers(0, width, big)
    keep = rng.random(big) < focus[by, bx]
    impulses = np.zeros(shape, np.float32)
    impulses[by[keep], bx[keep]] = 1.0
    big_blobs = ndimage.gaussian_filter(impulses, 5.0) * (2 * np.pi * 5.0 ** 2)
    haem += np.clip((big_blobs - 0.3) * 3.0, 0.0, 1.2) * chromatin
    eosin *= 1.0 - 0.5 * focus

    od = haem[..., None] * _OD_H + eosin[..., None] * _OD_E + 0.04
    rgb = 255.0 * np.exp(-od)
    rgb += rng.normal(0.0, 2.0, rgb.shape).astype(np.float32)  # scanner noise
    _draw_pen_mark(rgb, width, height)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _draw_pen_mark(rgb: np.ndarray, width: int, height: int) -> None:
    """Draw a green marker stroke near the bottom of the left section."""
    canvas = Image.new("L", (width, height), 0)
    pts = [(int(width * (0.12 + 0.02 * i)), int(height * (0.86 + 0.012 * np.sin(i)))) for i in range(11)]
    ImageDraw.Draw(canvas).line(pts, fill=255, width=max(8, width // 160), joint="curve")
    ink = ndimage.gaussian_filter(np.asarray(canvas, np.float32) / 255.0, 2.0)[..., None]
    rgb *= 1.0 - ink * (1.0 - np.array([0.35, 0.62, 0.45], np.float32))


def _label_image() -> Image.Image:
    img = Image.new("RGB", (400, 400), (250, 250, 245))
    d = ImageDraw.Draw(img)
    d.text((24, 24), "pathview DEMO\nsynthetic H&E\nno patient data", fill=(20, 20, 20))
    rng = np.random.default_rng(1)
    for i, wide in enumerate(rng.integers(0, 2, 60)):
        d.rectangle([24 + i * 5, 300, 24 + i * 5 + (3 if wide else 1), 370], fill=(0, 0, 0))
    return img


def write_demo_slide(path: str | Path) -> Path:
    """Render the demo tissue and write it as a pyramidal SVS at ``path``."""
    return write_image_svs(path, render_demo_tissue(), mpp=DEMO_MPP, magnification=20, associated=_associated_images)


def _associated_images(smallest: np.ndarray) -> dict[str, Image.Image]:
    """A label and a macro photo (label beside the glass), as scanners store them."""
    macro = Image.new("RGB", (1280, 430), (235, 235, 235))
    macro.paste(_label_image().resize((380, 380)), (20, 25))
    small = Image.fromarray(smallest).copy()
    small.thumbnail((840, 400))
    macro.paste(small, (420, 15))
    return {"label": _label_image(), "macro": macro}


def demo_slide_path(folder: str | Path | None = None) -> Path:
    """Return the demo slide in ``folder`` (default: the user data dir), writing it on first use."""
    if folder is None:
        from platformdirs import user_data_dir

        folder = user_data_dir("pathview", appauthor=False)
    path = Path(folder) / DEMO_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_demo_slide(path)
    return path
