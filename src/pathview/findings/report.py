"""The findings report (PDF or HTML): what was marked on a slide, for a colleague or the record.

Slide identity without patient data unless asked (no label or macro image, no file
name or path), an overview with every outline in its class colour, and per finding a
snapshot at a magnification that fits it, with its class, measurements, note and any
assistant answers (marked as AI-generated, not a diagnosis). The data is gathered here
once; :mod:`report_pdf` and :mod:`report_html` lay it out.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from shapely.geometry.base import BaseGeometry

from ..errors import RegionReadError
from .measurements import format_measurement, measure
from .model import RGB, Annotation
from .output import atomic_write
from .store import AssistantAnswer, FindingsStore

#: Findings that get their own snapshot; the rest are counted in the summary (a report of
#: 100,000 nuclei would be unreadable, and QuPath's detections are not findings).
MAX_SNAPSHOTS = 200
SNAPSHOT_PX = 600
OVERVIEW_PX = 1000
AI_DISCLAIMER = "AI-generated, not a diagnosis"
#: Unicode fonts (regular, bold) looked for on Linux, macOS and Windows, for µ, ² and notes in any script.
FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf"),
    ("/System/Library/Fonts/Supplemental/Arial.ttf", "/System/Library/Fonts/Supplemental/Arial Bold.ttf"),
    ("C:/Windows/Fonts/arial.ttf", "C:/Windows/Fonts/arialbd.ttf"),
)


def unicode_font() -> tuple[str, str] | None:
    """Return (regular, bold) paths of the first Unicode font found, or None."""
    return next(((r, b) for r, b in FONT_CANDIDATES if Path(r).is_file() and Path(b).is_file()), None)


def _picture_font(size: int) -> tuple[ImageFont.ImageFont, str]:
    """Return a font for drawing on pictures and how to write µm with it."""
    found = unicode_font()
    if found:
        return ImageFont.truetype(found[0], size), "µm"
    return ImageFont.load_default(size=size), "um"  # Pillow's built-in font has no µ


@dataclass
class Finding:
    """One annotation as the report shows it."""

    number: int
    annotation: Annotation
    color: RGB
    measurements: list[str]
    snapshot: Image.Image
    snapshot_caption: str
    answers: list[AssistantAnswer] = field(default_factory=list)


@dataclass
class ReportData:
    """Everything a report shows, already rendered to text and images."""

    title: str
    generated: str
    identity: list[tuple[str, str]]
    class_summary: list[tuple[str, RGB, int, str]]  # name, colour, count, total measure
    overview: Image.Image
    findings: list[Finding]
    not_shown: int


def _identity(slide, include_identifiers: bool) -> list[tuple[str, str]]:
    info = slide.info
    w, h = info.dimensions
    rows = []
    if include_identifiers:
        rows += [("File", Path(info.path).name), ("Path", str(info.path))]
    mpp = f"{info.mpp:.4g} µm/px ({info.mpp_source})" if info.mpp else "not recorded: measurements in pixels"
    obj = f"{info.objective_power:g}x" if info.objective_power else "unknown"
    rows += [("Slide id (quickhash)", info.quickhash), ("Format", info.vendor), ("Size", f"{w:,} x {h:,} px"),
             ("Pixel size", mpp), ("Scan magnification", obj)]
    return rows


def _draw(draw: ImageDraw.ImageDraw, geom: BaseGeometry, to_px, color: RGB, width: int) -> None:
    """Draw ``geom`` (level-0 px) with ``to_px`` mapping coordinates to image pixels."""
    t = geom.geom_type
    if t in ("MultiPolygon", "MultiLineString", "MultiPoint", "GeometryCollection"):
        for part in geom.geoms:
            _draw(draw, part, to_px, color, width)
    elif t == "Polygon":
        for ring in (geom.exterior, *geom.interiors):
            draw.line(to_px(np.asarray(ring.coords)), fill=color, width=width, joint="curve")
    elif t == "LineString":
        draw.line(to_px(np.asarray(geom.coords)), fill=color, width=width, joint="curve")
    elif t == "Point":
        (x, y), = to_px(np.asarray(geom.coords))
        r = 2 + 2 * width
        draw.ellipse((x - r, y - r, x + r, y + r), outline=color, width=width)


def _mapper(x0: float, y0: float, scale: float):
    return lambda xy: [(float(x), float(y)) for x, y in (xy[:, :2] - (x0, y0)) * scale]


def _overview(slide, annotations: list[Annotation], colors: list[RGB], numbers: list[int]) -> Image.Image:
    """Return the slide thumbnail with every outline and the numbers of the findings with a page."""
    img = slide.thumbnail(OVERVIEW_PX).convert("RGB")
    scale = img.width / slide.dimensions[0]
    draw = ImageDraw.Draw(img)
    to_px = _mapper(0, 0, scale)
    for ann, color in zip(annotations, colors):  # findings in 2 px, detections and cells in 1 px
        _draw(draw, ann.geometry, to_px, color, 2 if ann.object_type == "annotation" else 1)
    font, _ = _picture_font(15)
    for ann, n in zip(annotations, numbers):
        if n:
            x0, y0, _, _ = ann.bounds
            x, y = min(max(0.0, x0 * scale), img.width - 30), min(max(0.0, y0 * scale - 18), img.height - 18)
            box = draw.textbbox((x + 3, y), str(n), font=font)
            draw.rectangle((x, y, box[2] + 3, y + 18), fill=(255, 255, 255), outline=(0, 0, 0))
            draw.text((x + 3, y), str(n), fill=(0, 0, 0), font=font)
    return img


def _scale_bar(img: Image.Image, um_per_px: float | None) -> None:
    """Draw a scale bar of a round length in µm in the bottom-left corner."""
    if not um_per_px:
        return
    target = img.width * um_per_px / 4
    length = max((v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if v <= target), default=1)
    px = length / um_per_px
    draw = ImageDraw.Draw(img)
    font, um = _picture_font(14)
    label = f"{length:g} {um}" if length < 1000 else f"{length / 1000:g} mm"
    y = img.height - 12
    right = max(16 + px, draw.textbbox((12, 0), label, font=font)[2] + 4)
    draw.rectangle((6, y - 22, right, img.height - 4), fill=(255, 255, 255))
    draw.line((12, y, 12 + px, y), fill=(0, 0, 0), width=3)
    draw.text((12, y - 20), label, fill=(0, 0, 0), font=font)


def _snapshot(slide, ann: Annotation, color: RGB) -> tuple[Image.Image, str]:
    """Return the annotation's region with its outline, fitted with a margin in SNAPSHOT_PX, and a caption."""
    x0, y0, x1, y1 = ann.bounds
    margin = max(x1 - x0, y1 - y0) * 0.25
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # Never magnify past the scan: a point or a nucleus gets a native-resolution field around it.
    half_w = max((x1 - x0) / 2 + margin, SNAPSHOT_PX / 2)
    half_h = max((y1 - y0) / 2 + margin, SNAPSHOT_PX / 2)
    bx0, by0, bx1, by1 = cx - half_w, cy - half_h, cx + half_w, cy + half_h
    scale = SNAPSHOT_PX / max(bx1 - bx0, by1 - by0)
    out_w, out_h = max(1, round((bx1 - bx0) * scale)), max(1, round((by1 - by0) * scale))
    img = Image.new("RGB", (out_w, out_h), (235, 235, 235))
    w, h = slide.dimensions
    rx0, ry0, rx1, ry1 = max(0, math.floor(bx0)), max(0, math.floor(by0)), min(w, math.ceil(bx1)), min(h, math.ceil(by1))
    if rx1 > rx0 and ry1 > ry0:
        pw, ph = max(1, round((rx1 - rx0) * scale)), max(1, round((ry1 - ry0) * scale))
        try:
            pixels = slide.read_scaled((rx0, ry0, rx1 - rx0, ry1 - ry0), (pw, ph))
            img.paste(Image.fromarray(pixels), (round((rx0 - bx0) * scale), round((ry0 - by0) * scale)))
        except RegionReadError:
            pass  # damaged tiles: the grey background shows through
    _draw(ImageDraw.Draw(img), ann.geometry, _mapper(bx0, by0, scale), color, 3)
    mpp = slide.info.mpp
    _scale_bar(img, mpp / scale if mpp else None)
    if mpp:
        mag = 10 / (mpp / scale)
        mag_text = f"{mag:.0f}x" if mag >= 10 else f"{mag:.2g}x"
        caption = f"field {(bx1 - bx0) * mpp:,.0f} x {(by1 - by0) * mpp:,.0f} µm, about {mag_text}"
    else:
        caption = f"field {bx1 - bx0:,.0f} x {by1 - by0:,.0f} px (slide has no pixel size)"
    if not (rx1 > rx0 and ry1 > ry0):
        caption += "; outside the slide"
    return img, caption


def collect(store: FindingsStore, slide, include_identifiers: bool = False) -> ReportData:
    """Gather the report of the slide's annotations (snapshots read from the slide)."""
    qh = slide.info.quickhash
    mpp = slide.info.mpp
    annotations = store.annotations(qh)
    class_colors = store.class_colors()
    answers = store.all_answers(qh)
    shown = [a for a in annotations if a.object_type == "annotation" or a.id in answers][:MAX_SNAPSHOTS]
    shown_ids = {a.id: n for n, a in enumerate(shown, start=1)}
    colors = [a.display_color(class_colors) for a in annotations]
    findings = []
    for ann in shown:
        color = ann.display_color(class_colors)
        snap, caption = _snapshot(slide, ann, color)
        lines = [format_measurement(k, v) for k, v in measure(ann, mpp).items()]
        lines += [format_measurement(k, v) for k, v in ann.measurements.items()]
        findings.append(Finding(shown_ids[ann.id], ann, color, lines, snap, caption, answers.get(ann.id, [])))
    summary: dict[str, list] = {}
    for ann, color in zip(annotations, colors):
        key = ann.class_name or "Unclassified"
        entry = summary.setdefault(key, [color, 0, 0.0])
        entry[1] += 1
        entry[2] += ann.geometry.area if ann.is_area else 0.0
    class_summary = [(k, v[0], v[1], _total_area(v[2], mpp) if v[2] else "") for k, v in summary.items()]
    return ReportData(
        title="Annotation report", generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        identity=_identity(slide, include_identifiers), class_summary=class_summary,
        overview=_overview(slide, annotations, colors, [shown_ids.get(a.id, 0) for a in annotations]),
        findings=findings, not_shown=len(annotations) - len(shown),
    )


def _total_area(px2: float, mpp: float | None) -> str:
    """Return an area in the unit a pathologist reads at that size: µm² below 0.1 mm², else mm² (px² without mpp)."""
    if not mpp:
        return f"{px2:,.0f} px²"
    um2 = px2 * mpp * mpp
    return f"{um2:,.0f} µm²" if um2 < 1e5 else f"{um2 / 1e6:,.3f} mm²"


def jpeg_bytes(img: Image.Image, quality: int = 88) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def write_report(store: FindingsStore, slide, out: Path, fmt: str, include_identifiers: bool = False) -> list[str]:
    """Write the report as 'pdf' or 'html' to ``out``; return warnings."""
    data = collect(store, slide, include_identifiers)
    if fmt == "pdf":
        from .report_pdf import pdf_bytes

        atomic_write(out, pdf_bytes(data))
    else:
        from .report_html import html_bytes

        atomic_write(out, html_bytes(data))
    warnings = []
    if not data.findings and not data.not_shown:
        warnings.append("the slide has no annotations: the report holds the overview only")
    if data.not_shown:
        warnings.append(f"{data.not_shown:,} objects (detections, cells, or beyond the first {MAX_SNAPSHOTS}) "
                        "are counted in the summary and drawn on the overview, without their own snapshot")
    return warnings
