"""Aperio ImageScope XML: read the annotation layers pathologists draw in ImageScope.

``Annotations[@MicronsPerPixel]/Annotation[@Name, @LineColor]/Regions/Region[@Type, @Text]/
Vertices/Vertex[@X, @Y]``. A layer's name (or, as HistoQC reads it, its first attribute
other than Description) is the class; ``LineColor`` is a Windows BGR integer. Region
types: 0 rectangle, 1 freehand polygon, 2 ellipse (two corners), 3 arrow, 4 ruler, 5 pin.
"""

from __future__ import annotations

import math
from pathlib import Path

import shapely

from .asap import parse_xml
from .errors import AnnotationImportError
from .geometry import kind_for, polygonal_part, summarise
from .imported import MAX_OBJECTS, ImportResult
from .model import RGB, Annotation, ellipse


def _bgr(value: str | None) -> RGB | None:
    try:
        v = int(value or "")
    except ValueError:
        return None
    return v & 255, (v >> 8) & 255, (v >> 16) & 255


def _layer_class(layer) -> str | None:
    if layer.get("Name"):
        return layer.get("Name")
    for attr in layer.findall("./Attributes/Attribute"):
        if attr.get("Name") and attr.get("Name") != "Description":
            return attr.get("Name")
    return None


def read_imagescope(path: str | Path) -> ImportResult:
    """Read an ImageScope XML file; raise :class:`AnnotationImportError` with the cause if it is unusable."""
    path = Path(path)
    root = parse_xml(path)
    if root.tag != "Annotations":
        raise AnnotationImportError(path, f"not an ImageScope annotation file (root element <{root.tag}>)")
    result = ImportResult()
    try:
        result.mpp = float(root.get("MicronsPerPixel", "")) or None
    except ValueError:
        result.mpp = None
    regions = root.findall("./Annotation/Regions/Region")
    if len(regions) > MAX_OBJECTS:
        raise AnnotationImportError(path, f"it holds {len(regions):,} regions, more than the {MAX_OBJECTS:,} "
                                          "pathview imports at once; split the file")
    issues: dict[str, list[str]] = {}
    for n, layer in enumerate(root.findall("./Annotation")):
        class_name, color = _layer_class(layer), _bgr(layer.get("LineColor"))
        if class_name:
            result.add_class(class_name, color)
        for region in layer.findall("./Regions/Region"):
            label = f"layer {n + 1} region {region.get('Id', '?')}"
            try:
                xy = [(float(v.get("X")), float(v.get("Y"))) for v in region.findall("./Vertices/Vertex")]
                if not all(math.isfinite(c) for p in xy for c in p):
                    raise ValueError
            except (TypeError, ValueError):
                raise AnnotationImportError(path, f"{label}: a vertex is missing or not a number") from None
            geom, kind, issue = _geometry(region.get("Type", "1"), xy)
            if issue:
                issues.setdefault(issue, []).append(label)
            if geom is None:
                continue
            if region.get("NegativeROA") == "1":
                issues.setdefault("negative (exclusion) regions imported as ordinary outlines", []).append(label)
            measurements = {}
            for attr, name in (("AreaMicrons", "ImageScope area µm²"), ("LengthMicrons", "ImageScope length µm")):
                try:
                    measurements[name] = float(region.get(attr, ""))
                except ValueError:
                    pass
            result.annotations.append(Annotation(
                geometry=geom, kind=kind, class_name=class_name, color=None if class_name else color,
                name=region.get("Text") or "", source="import", measurements=measurements))
    result.warnings = [summarise(what, labels) for what, labels in issues.items()]
    return result


def _geometry(region_type: str, xy: list[tuple[float, float]]):
    """Return (geometry, kind, issue) of one region; geometry None when it is skipped."""
    if not xy:
        return None, None, "regions without vertices skipped"
    if len(xy) == 1 or region_type == "5":
        return shapely.Point(xy[0]), "point", None
    if region_type == "2":  # ellipse: the two corners of its box
        xs, ys = [p[0] for p in xy], [p[1] for p in xy]
        return ellipse(min(xs), min(ys), max(xs), max(ys)), "ellipse", None
    if region_type in ("3", "4") or len(xy) == 2:
        geom = shapely.LineString(xy)
        return geom, kind_for(geom), None
    geom = shapely.Polygon(xy)
    issue = None
    if not geom.is_valid:
        geom = polygonal_part(shapely.make_valid(geom))
        issue = "self-intersecting outlines repaired" if geom is not None else "outlines with no area skipped"
        if geom is None:
            return None, None, issue
    return geom, kind_for(geom, hint="rectangle" if region_type == "0" else None), issue
