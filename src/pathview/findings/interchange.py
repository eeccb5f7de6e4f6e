"""Import annotation files into the store and export a slide's annotations: the formats by name.

An import reads and checks every file before it stores anything, then stores all of
them in one transaction: a bad file (or a crash) leaves the slide's annotations as
they were; the report lists what it stored, so the viewer can undo the import as one
step. Warnings (repairs, outlines outside the slide, a file drawn at another pixel size)
come back as lines for the CLI or the viewer to show.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..slide.info import SlideInfo
from .asap import asap_bytes, read_asap
from .csv_export import csv_bytes
from .errors import AnnotationExportError, AnnotationImportError
from .geojson import geojson_bytes, read_geojson
from .geometry import gc_paused, outside_slide
from .imagescope import imagescope_bytes, read_imagescope
from .imported import MAX_OBJECTS, ImportResult
from .model import Annotation, AnnotationClass
from .output import atomic_write
from .store import FindingsStore

#: Readers by format name.
IMPORTERS: dict[str, Callable[[Path], ImportResult]] = {
    "geojson": read_geojson, "asap": read_asap, "imagescope": read_imagescope,
}
#: Export formats the CLI offers (pdf and html are the report).
EXPORT_FORMATS = ("geojson", "asap", "imagescope", "csv", "pdf", "html")


@dataclass
class ImportReport:
    """What an import stored: the count, per file, the annotations and the new classes themselves (for undo),
    and warnings to show."""

    count: int = 0
    per_file: list[tuple[Path, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    classes_added: list[AnnotationClass] = field(default_factory=list)


def detect_format(path: str | Path) -> str:
    """Return 'geojson', 'asap' or 'imagescope' from the file's extension and first bytes."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as exc:
        raise AnnotationImportError(path, exc.strerror or str(exc)) from None
    if head.startswith((b"{", b"[")) or path.suffix.lower() in (".json", ".geojson"):
        return "geojson"
    if b"<ASAP_Annotations" in head:
        return "asap"
    if b"<Annotations" in head:
        return "imagescope"
    raise AnnotationImportError(path, "not a known annotation format (QuPath GeoJSON, ASAP XML or ImageScope XML)")


def read_file(path: str | Path) -> ImportResult:
    """Read one annotation file of any known format (not stored)."""
    return IMPORTERS[detect_format(path)](Path(path))


def _fallback_color(name: str) -> tuple[int, int, int]:
    """A stable colour for a class a file names without one."""
    h = hashlib.sha1(name.encode()).digest()
    return 64 + h[0] % 160, 64 + h[1] % 160, 64 + h[2] % 160


def import_files(store: FindingsStore, info: SlideInfo, paths: Sequence[str | Path]) -> ImportReport:
    """Read ``paths`` and add their annotations to the slide in ONE transaction; return a report."""
    report = ImportReport()
    pending = []
    with gc_paused():
        for p in map(Path, paths):
            result = read_file(p)
            report.warnings += [f"{p.name}: {w}" for w in result.warnings]
            outside = outside_slide([a.geometry for a in result.annotations], info.dimensions)
            if outside:
                w, h = info.dimensions
                which = _of(len(outside), len(result.annotations), "reaches", "reach")
                report.warnings.append(f"{p.name}: {which} outside the slide ({w} x {h} px); kept as they are - "
                                       "is it this slide's file?")
            if result.mpp and info.mpp and abs(result.mpp - info.mpp) / info.mpp > 0.05:
                report.warnings.append(f"{p.name}: drawn on an image of {result.mpp:g} µm/px, this slide is "
                                       f"{info.mpp:g} µm/px - is it this slide's file?")
            report.per_file.append((p, len(result.annotations)))
            pending.append(result)
        annotations = [a for r in pending for a in r.annotations]
        if len(annotations) > MAX_OBJECTS:
            raise AnnotationImportError(Path(paths[0]), f"together the files hold {len(annotations):,} objects, more "
                                                        f"than the {MAX_OBJECTS:,} pathview imports at once")
        again = _already_there(store, info.quickhash, annotations)
        if again:
            report.warnings.append(f"{_of(again, len(annotations), 'is', 'are')} already on this slide with the same class "
                                   "and shape: imported again (was this file imported before?)")
        report.count = store.add_many(info.quickhash, annotations)
        report.annotations = annotations
    known = {c.name for c in store.classes()}
    for result in pending:
        named = {a.class_name for a in result.annotations if a.class_name} - known
        colors = {c.name: c.color for c in result.classes}
        for name in sorted(named):
            cls = AnnotationClass(name, colors.get(name) or _fallback_color(name))
            store.set_class(cls)
            report.classes_added.append(cls)
            known.add(name)
    return report


def _already_there(store: FindingsStore, quickhash: str, annotations: Sequence) -> int:
    """Count the annotations the slide already holds with the same class and geometry (a repeated import)."""
    if not annotations or not store.count(quickhash):
        return 0
    existing = {(a.class_name, a.geometry.wkb) for a in store.annotations(quickhash)}
    return sum((a.class_name, a.geometry.wkb) in existing for a in annotations)


def export_annotations(store: FindingsStore, slide, fmt: str, out: str | Path,
                       include_identifiers: bool = False) -> list[str]:
    """Write the slide's annotations to ``out`` as ``fmt`` (see EXPORT_FORMATS); return warnings.

    ``slide`` is an open :class:`~pathview.slide.Slide` (the report reads its pixels) or, for
    the file formats, just its :class:`SlideInfo`.
    """
    if fmt not in EXPORT_FORMATS:
        raise AnnotationExportError(out, f"unknown format '{fmt}' (one of {', '.join(EXPORT_FORMATS)})")
    if fmt in ("pdf", "html"):
        from .report import write_report

        return write_report(store, slide, Path(out), fmt, include_identifiers=include_identifiers)
    info: SlideInfo = slide if isinstance(slide, SlideInfo) else slide.info
    annotations = store.annotations(info.quickhash)
    colors = store.class_colors()
    warnings: list[str] = []
    if fmt == "geojson":
        data = geojson_bytes(annotations, colors, info.mpp, store.all_answers(info.quickhash))
    elif fmt == "asap":
        data, warnings = asap_bytes(annotations, colors)
    elif fmt == "imagescope":
        data, warnings = imagescope_bytes(annotations, colors, info.mpp)
    else:
        data = csv_bytes(annotations, info.mpp, info.mpp_source)
    atomic_write(out, data)
    return warnings


def _of(part: int, whole: int, one: str, many: str) -> str:
    """'3 of 5 annotations <many>', '1 of 5 annotations <one>', or 'the only annotation <one>'."""
    if whole == 1:
        return f"the only annotation {one}"
    return f"{part} of {whole} annotations {one if part == 1 else many}"
