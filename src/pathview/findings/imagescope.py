"""Aperio ImageScope XML: read the annotation layers pathologists draw in ImageScope, and write them.

``Annotations[@MicronsPerPixel]/Annotation[@Name, @LineColor]/Regions/Region[@Type, @Text,
@NegativeROA]/Vertices/Vertex[@X, @Y]``. A layer's name (or, as HistoQC reads it, its first
attribute other than Description) is the class; ``LineColor`` is a Windows BGR integer.
Region types: 0 freehand outline, 1 rectangle (four corners), 2 ellipse (two corners of its
box), 3 arrow, 4 ruler, 5 pin. A region with ``NegativeROA="1"`` (ImageScope's negative pen)
is a hole, cut out of the outline of its layer it lies in. Region attributes (the columns of
ImageScope's region table) carry the note ("Description") and, for a shape of several parts,
which regions are one annotation ("Part of").
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import shapely
from shapely.geometry.base import BaseGeometry

from .asap import cut_holes, parse_xml
from .errors import AnnotationImportError
from .geometry import kind_for, polygonal_part, summarise, valid_for_export
from .imported import MAX_OBJECTS, ImportResult
from .model import RGB, UNCLASSIFIED_COLOR, Annotation, ellipse

_NOTE, _PART_OF = "Description", "Part of"
_HEADER_IDS = {_NOTE: "1", _PART_OF: "2"}
_POLYGONAL = ("Polygon", "MultiPolygon")


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
        outlines, holes, hole_labels = [], [], []
        for place, region in enumerate(layer.findall("./Regions/Region")):
            label = f"layer {n + 1} region {region.get('Id', '?')}"
            try:
                xy = [(float(v.get("X")), float(v.get("Y"))) for v in region.findall("./Vertices/Vertex")]
                if not all(math.isfinite(c) for p in xy for c in p):
                    raise ValueError
            except (TypeError, ValueError):
                raise AnnotationImportError(path, f"{label}: a vertex is missing or not a number") from None
            geom, kind, issue = _geometry(region.get("Type", "0"), xy)
            if issue:
                issues.setdefault(issue, []).append(label)
            if geom is None:
                continue
            if region.get("NegativeROA") != "1":
                outlines.append((place, geom, kind, region, label))
            elif geom.geom_type in _POLYGONAL:
                holes.append((place, geom))
                hole_labels.append(label)
            else:
                issues.setdefault("negative regions without an area skipped", []).append(label)
        cut, orphans = cut_holes([o[1] for o in outlines], [o[0] for o in outlines], holes)
        if orphans:
            issues.setdefault("negative regions inside no outline of their layer skipped", []).extend(
                hole_labels[k] for k in orphans)
        kept = []
        for (_, _, kind, region, label), geom in zip(outlines, cut):
            if geom.is_empty:
                issues.setdefault("outlines wholly inside negative regions skipped", []).append(label)
            else:  # a freehand box is a rectangle, one with holes cut out of it is not
                kept.append((geom, kind_for(geom) if kind == "polygon" else kind, region))
        result.annotations += [_annotation(part, class_name, color) for part in _joined(kept)]
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
    return geom, "rectangle" if region_type == "1" and kind_for(geom) == "rectangle" else "polygon", issue


def _attributes(region) -> dict[str, str]:
    return {a.get("Name"): a.get("Value") or "" for a in region.findall("./Attributes/Attribute") if a.get("Name")}


def _joined(regions: list[tuple[BaseGeometry, str, ET.Element]]) -> list[tuple[BaseGeometry, str, ET.Element]]:
    """Join the regions that say they are parts of one shape ("Part of") into one multi-part geometry."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (geom, _, region) in enumerate(regions):
        key = _attributes(region).get(_PART_OF)
        if key:
            groups.setdefault((key, "Polygon" if geom.geom_type in _POLYGONAL else geom.geom_type), []).append(i)
    first = {members[0]: members for members in groups.values()}
    later = {i for members in groups.values() for i in members[1:]}
    out = []
    for i, (geom, kind, region) in enumerate(regions):
        if i in first:
            geom = _multi([regions[j][0] for j in first[i]])
            kind = kind_for(geom)
        if i not in later:
            out.append((geom, kind, region))
    return out


def _multi(parts: list[BaseGeometry]) -> BaseGeometry:
    if parts[0].geom_type in _POLYGONAL:
        merged = shapely.MultiPolygon([p for part in parts for p in getattr(part, "geoms", [part])])
        return merged if merged.is_valid else polygonal_part(shapely.make_valid(merged)) or merged
    if parts[0].geom_type == "Point":
        return shapely.MultiPoint(parts)
    return shapely.MultiLineString(parts)


def _annotation(part: tuple[BaseGeometry, str, ET.Element], class_name: str | None, color: RGB | None) -> Annotation:
    geom, kind, region = part
    measurements = {}
    for attr, name in (("AreaMicrons", "ImageScope area µm²"), ("LengthMicrons", "ImageScope length µm")):
        try:
            measurements[name] = float(region.get(attr, ""))
        except ValueError:
            pass
    return Annotation(geometry=geom, kind=kind, class_name=class_name, color=None if class_name else color,
                      name=region.get("Text") or "", note=_attributes(region).get(_NOTE, ""), source="import",
                      measurements=measurements)


# -- export ---------------------------------------------------------------------------------------
def imagescope_bytes(annotations: list[Annotation], class_colors: dict[str, RGB],
                     mpp: float | None) -> tuple[bytes, list[str]]:
    """Return ImageScope XML of ``annotations`` (one layer per class) and warnings for what it cannot hold."""
    root = ET.Element("Annotations")
    if mpp:
        root.set("MicronsPerPixel", repr(float(mpp)))
    layers: dict[tuple[str | None, RGB | None], list[Annotation]] = {}
    for ann in annotations:  # unclassified ones: one layer per colour
        key = (ann.class_name, None) if ann.class_name else (None, ann.display_color(class_colors))
        layers.setdefault(key, []).append(ann)
    issues: dict[str, list[str]] = {}
    for n, ((class_name, own), anns) in enumerate(layers.items(), start=1):
        r, g, b = own or class_colors.get(class_name) or UNCLASSIFIED_COLOR
        layer = ET.SubElement(root, "Annotation", Id=str(n), Name=class_name or "", ReadOnly="0", NameReadOnly="0",
                              LineColorReadOnly="0", Incremental="0", Type="4", LineColor=str(b << 16 | g << 8 | r),
                              Visible="1", Selected="0", MarkupImagePath="", MacroName="")
        ET.SubElement(layer, "Attributes")
        regions = ET.SubElement(layer, "Regions")
        headers = ET.SubElement(regions, "RegionAttributeHeaders")
        for name, header_id in _HEADER_IDS.items():
            ET.SubElement(headers, "AttributeHeader", Id=header_id, Name=name, ColumnWidth="-1")
        region_id = 0
        for ann in anns:
            label = f"'{ann.name}'" if ann.name else ann.id[:8]
            if class_name and ann.color not in (None, class_colors.get(class_name)):
                issues.setdefault("own colours left out, as an ImageScope layer has one colour: its class's",
                                  []).append(label)
            attributes = {_NOTE: ann.note, _PART_OF: ann.id if ann.geometry.geom_type.startswith("Multi") else ""}
            for region_type, coords, negative in _regions(ann, issues, label):
                region_id += 1
                _write_region(regions, region_id, region_type, coords, negative, ann.name, attributes)
    ET.indent(root, "\t")
    warnings = [summarise(what, labels) for what, labels in issues.items()]
    return ET.tostring(root, encoding="utf-8", xml_declaration=True), warnings


def _write_region(regions: ET.Element, region_id: int, region_type: str, coords: list, negative: bool, text: str,
                  attributes: dict[str, str]) -> None:
    region = ET.SubElement(regions, "Region", Id=str(region_id), Type=region_type, Zoom="1", Selected="0",
                           ImageLocation="", ImageFocus="-1", Text=text, NegativeROA="1" if negative else "0",
                           InputRegionId="0", Analyze="1", DisplayId=str(region_id))
    values = ET.SubElement(region, "Attributes")
    for name, value in attributes.items():
        if value:
            ET.SubElement(values, "Attribute", Name=name, Id=_HEADER_IDS[name], Value=value)
    vertices = ET.SubElement(region, "Vertices")
    for x, y in coords:
        ET.SubElement(vertices, "Vertex", X=repr(float(x)), Y=repr(float(y)), Z="0")


def _regions(ann: Annotation, issues: dict[str, list[str]], label: str) -> list[tuple[str, list, bool]]:
    """Return (region type, vertices, negative) for each ImageScope region one annotation becomes."""
    geom = valid_for_export(ann.geometry)
    parts = list(getattr(geom, "geoms", [geom]))
    if geom.geom_type in ("Point", "MultiPoint"):
        return [("5", list(p.coords), False) for p in parts]
    if geom.geom_type in ("LineString", "MultiLineString"):
        if any(len(line.coords) > 2 for line in parts):
            issues.setdefault("open polylines written as rulers through all their vertices, as ImageScope has no "
                              "polyline", []).append(label)
        return [("4", list(line.coords), False) for line in parts]
    out = []
    for polygon in parts:
        out.append(_outline(ann.kind, shapely.Polygon(polygon.exterior)))
        out += [("0", list(ring.coords)[:-1], True) for ring in polygon.interiors]
    return out


def _outline(kind: str, shell: shapely.Polygon) -> tuple[str, list, bool]:
    """A rectangle or ellipse as ImageScope's own shape where it is exactly one, else a freehand outline."""
    x0, y0, x1, y1 = shell.bounds
    if kind == "rectangle" and len(shell.exterior.coords) == 5 and shell.equals(shapely.box(x0, y0, x1, y1)):
        return "1", [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], False
    if kind == "ellipse" and shapely.hausdorff_distance(shell, ellipse(x0, y0, x1, y1)) <= 0.01:
        return "2", [(x0, y0), (x1, y1)], False
    return "0", list(shell.exterior.coords)[:-1], False
