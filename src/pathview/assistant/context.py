"""What the model is shown about a region: pictures at a suitable magnification, and a few facts.

The region is read through the slide core at the resolution the question needs and the
model's image budget allows: a large region is downsampled whole; when that makes it
too coarse for the question (nuclei, mitoses need about 20x), a detail crop of its
centre at the needed resolution is added. The text states magnification, pixel size,
physical size, the analysis scores of the region and the annotation's class and note,
so the model (and the pathologist reading the record) knows the scale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..slide import Slide
from .errors import RegionOutsideSlideError
from .messages import png_bytes
from .scores import RegionScores, region_scores

Box = tuple[int, int, int, int]

#: Words asking about cells: answered from about 20x (0.5 µm/px).
_CELL_WORDS = re.compile(r"nucle|mitos|mitot|cell|cyto|chromatin|atypi|pleomorph|lympho|neutrophil|eosinophil|"
                         r"plasma|macrophage|histiocyt|inclusion|organism|bacteri|fung|parasit|grade|keratin",
                         re.IGNORECASE)
#: Words asking about architecture: the whole region at low power is the right view.
_ARCH_WORDS = re.compile(r"architect|pattern|gland|invasi|margin|border|overall|layer|distribution|structure|"
                         r"extent|low power|overview|growth", re.IGNORECASE)
CELL_MPP = 0.5
DEFAULT_DETAIL_MPP = 1.0
#: A detail crop is added when the whole region is this much coarser than the question needs.
DETAIL_FACTOR = 1.5


@dataclass(frozen=True)
class Annotation:
    """What the pathologist recorded about the region (from the annotation they selected)."""

    id: str | int | None = None
    classification: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class RegionImage:
    """One picture of the region: ``box`` level-0 x, y, w, h read at ``mpp`` µm/px (or ``downsample``)."""

    label: str
    box: Box
    png: bytes
    size: tuple[int, int]
    downsample: float
    mpp: float | None

    def describe(self) -> str:
        w, h = self.size
        if self.mpp is None:
            return f"{self.label}: {w} x {h} px, {self.downsample:.3g} slide pixels per image pixel"
        return f"{self.label}: {w} x {h} px at {self.mpp:.2g} µm/px (about {10 / self.mpp:.2g}x)"


@dataclass(frozen=True)
class RegionContext:
    box: Box
    images: tuple[RegionImage, ...]
    text: str
    facts: dict[str, object] = field(default_factory=dict)


def detail_mpp(question: str) -> float | None:
    """Return the pixel size the question needs in detail, or None when the whole region suffices."""
    if _CELL_WORDS.search(question):
        return CELL_MPP
    if _ARCH_WORDS.search(question):
        return None
    return DEFAULT_DETAIL_MPP


def clip_box(box: Box, dimensions: tuple[int, int]) -> Box:
    """Return ``box`` limited to the slide; raise when nothing of it is on the slide."""
    x, y, w, h = (int(round(v)) for v in box)
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(dimensions[0], x + w), min(dimensions[1], y + h)
    if x1 <= x0 or y1 <= y0:
        raise RegionOutsideSlideError((x, y, w, h), dimensions)
    return x0, y0, x1 - x0, y1 - y0


def _read(slide: Slide, label: str, box: Box, budget: int, level0_mpp: float | None) -> RegionImage:
    x, y, w, h = box
    ds = max(1.0, max(w, h) / budget)  # never upsample: the model sees the slide's own pixels at most
    size = (max(1, round(w / ds)), max(1, round(h / ds)))
    pixels = slide.read_scaled(box, size)
    return RegionImage(label, box, png_bytes(pixels), size, ds, level0_mpp * ds if level0_mpp else None)


def plan_boxes(box: Box, question: str, budget: int, level0_mpp: float | None,
               max_images: int = 2) -> list[tuple[str, Box]]:
    """Return the (label, level-0 box) pictures to show for ``question``: the region, maybe a detail."""
    x, y, w, h = box
    plan = [("Image 1, the whole region", box)]
    want = detail_mpp(question)
    if want is None or max_images < 2:
        return plan
    # Without a pixel size, work in slide pixels: treat level 0 as the finest useful view.
    unit = level0_mpp or want
    coarse = unit * max(1.0, max(w, h) / budget)
    if coarse <= want * DETAIL_FACTOR:
        return plan
    side = round(budget * want / unit)
    dw, dh = min(w, side), min(h, side)
    plan.append(("Image 2, detail of the centre", (x + (w - dw) // 2, y + (h - dh) // 2, dw, dh)))
    return plan


def build_context(slide: Slide, box: Box, question: str, budget: int, max_images: int = 2,
                  tiles_h5: str | Path | None = None, annotation: Annotation | None = None) -> RegionContext:
    """Read the pictures and write the facts for ``question`` about ``box`` (level-0 x, y, w, h)."""
    box = clip_box(box, slide.dimensions)
    mpp = slide.mpp
    images = tuple(_read(slide, label, b, budget, mpp) for label, b in plan_boxes(box, question, budget, mpp, max_images))
    scores = region_scores(tiles_h5, box, slide.quickhash) if tiles_h5 else None
    text = describe(slide, box, images, scores, annotation)
    facts: dict[str, object] = {
        "region": list(box), "mpp": mpp, "mpp_source": slide.info.mpp_source,
        "objective_power": slide.info.objective_power,
        "size_um": [round(box[2] * mpp, 1), round(box[3] * mpp, 1)] if mpp else None,
        "images": [{"label": i.label, "box": list(i.box), "size": list(i.size), "mpp": i.mpp} for i in images],
        "scores": scores.to_dict() if scores else None,
        "annotation": {"id": annotation.id, "class": annotation.classification, "note": annotation.note}
        if annotation else None,
    }
    return RegionContext(box, images, text, facts)


def describe(slide: Slide, box: Box, images: tuple[RegionImage, ...], scores: RegionScores | None,
             annotation: Annotation | None) -> str:
    """Return the short text context: scale first, then analysis and annotation."""
    x, y, w, h = box
    info = slide.info
    mpp = info.mpp
    lines = ["A region of a whole-slide image of a stained tissue section."]
    if mpp:
        scan = f"{info.objective_power:g}x" if info.objective_power else "unknown objective"
        lines.append(f"Slide scanned at {scan}, {mpp:.3g} µm/px"
                     + (" (pixel size given by the user)" if info.mpp_source == "user" else "") + ".")
        lines.append(f"Region: {w * mpp:.0f} x {h * mpp:.0f} µm ({w} x {h} px at x {x}, y {y}).")
    else:
        lines.append("The slide records no pixel size: physical sizes are unknown.")
        lines.append(f"Region: {w} x {h} slide pixels at x {x}, y {y}.")
    lines += [img.describe() + "." for img in images]
    if scores is not None:
        lines.append(scores.describe())
    if annotation is not None and (annotation.classification or annotation.note):
        what = f"class '{annotation.classification}'" if annotation.classification else "no class"
        lines.append(f"The pathologist's annotation: {what}" + (f", note: {annotation.note}" if annotation.note else "") + ".")
    return "\n".join(lines)
