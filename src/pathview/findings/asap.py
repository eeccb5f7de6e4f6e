"""ASAP XML: read and write the annotation files of ASAP (and of the CAMELYON challenges).

``ASAP_Annotations/Annotations/Annotation[@Name, @Type, @PartOfGroup, @Color]/Coordinates/
Coordinate[@Order, @X, @Y]``, with groups (our classes) in ``AnnotationGroups/Group``. ASAP
knows Dot, PointSet, Polygon, Spline, Rectangle and Measurement, and no holes, ellipses or
open polylines. Holes are written as the CAMELYON files write areas to leave out: polygons
of their own group (:data:`EXCLUSION_GROUP`), which the reader cuts out of the polygon each
falls in. Ellipses and polylines are written as near as ASAP allows, with a warning.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import shapely
from defusedxml import ElementTree as SafeET
from shapely.geometry.base import BaseGeometry

from .errors import AnnotationImportError
from .geometry import kind_for, polygonal_part, summarise, valid_for_export
from .imported import MAX_OBJECTS, ImportResult
from .model import RGB, Annotation

_DEFAULT_GROUP_COLOR = "#64FE2E"
#: The group of the polygons that are holes in another (CAMELYON's exclusion areas): not a class.
EXCLUSION_GROUP = "_exclusion"
_EXCLUSION_COLOR = "#808080"
_POLYGONAL = ("Polygon", "MultiPolygon")


def parse_xml(path: Path) -> ET.Element:
    """Parse an XML file safely (no entities, no external references) or raise a clear import error."""
    try:
        return SafeET.parse(path, forbid_dtd=True).getroot()
    except OSError as exc:
        raise AnnotationImportError(path, exc.strerror or str(exc)) from None
    except ET.ParseError as exc:
        raise AnnotationImportError(path, f"not valid XML ({exc})") from None
    except Exception as exc:  # defusedxml refuses DTDs and entities with its own error types
        raise AnnotationImportError(path, f"unsafe or unreadable XML ({type(exc).__name__})") from None


def hex_color(text: str | None) -> RGB | None:
    """Return (r, g, b) of '#RRGGBB', or None."""
    if text and len(text) == 7 and text.startswith("#"):
        try:
            return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)
        except ValueError:
            return None
    return None


def _float(text: str | None) -> float:
    value = float(text if text is not None else "nan")
    if not math.isfinite(value):
        raise ValueError
    return value


def read_asap(path: str | Path) -> ImportResult:
    """Read an ASAP XML file; raise :class:`AnnotationImportError` with the cause if it is unusable."""
    path = Path(path)
    root = parse_xml(path)
    if root.tag != "ASAP_Annotations":
        raise AnnotationImportError(path, f"not an ASAP annotation file (root element <{root.tag}>)")
    result = ImportResult()
    for group in root.iter("Group"):
        if group.get("Name") and group.get("Name") != EXCLUSION_GROUP:
            result.add_class(group.get("Name"), hex_color(group.get("Color")))
    items = root.findall("./Annotations/Annotation")
    if len(items) > MAX_OBJECTS:
        raise AnnotationImportError(path, f"it holds {len(items):,} annotations, more than the {MAX_OBJECTS:,} "
                                          "pathview imports at once; split the file")
    issues: dict[str, list[str]] = {}
    outlines: list[tuple[int, BaseGeometry, ET.Element, str]] = []
    holes: list[tuple[int, BaseGeometry]] = []
    hole_labels: list[str] = []
    for i, item in enumerate(items):
        label = f"annotation {i + 1} ('{item.get('Name')}')" if item.get("Name") else f"annotation {i + 1}"
        try:
            coords = sorted(item.iter("Coordinate"), key=lambda c: float(c.get("Order", 0)))
            xy = [(_float(c.get("X")), _float(c.get("Y"))) for c in coords]
        except ValueError:
            raise AnnotationImportError(path, f"{label}: a coordinate is missing or not a number") from None
        geom, issue = _geometry(item.get("Type", "Polygon"), xy)
        if issue:
            issues.setdefault(issue, []).append(label)
        if geom is None:
            continue
        if item.get("PartOfGroup") != EXCLUSION_GROUP:
            outlines.append((i, geom, item, label))
        elif geom.geom_type in _POLYGONAL:
            holes.append((i, geom))
            hole_labels.append(label)
        else:
            issues.setdefault(f"'{EXCLUSION_GROUP}' annotations without an area skipped", []).append(label)
    geoms, orphans = cut_holes([o[1] for o in outlines], [o[0] for o in outlines], holes)
    if orphans:
        issues[f"'{EXCLUSION_GROUP}' polygons inside no other polygon skipped"] = [hole_labels[k] for k in orphans]
    for (_, _, item, label), geom in zip(outlines, geoms):
        if geom.is_empty:
            issues.setdefault(f"polygons wholly inside '{EXCLUSION_GROUP}' polygons skipped", []).append(label)
            continue
        group = item.get("PartOfGroup")
        class_name = group if group and group != "None" else None
        kind = item.get("Type", "Polygon")
        result.annotations.append(Annotation(
            geometry=geom, kind=kind_for(geom, hint="rectangle" if kind == "Rectangle" else None),
            class_name=class_name, color=None if class_name else hex_color(item.get("Color")),
            name=item.get("Name") or "", source="import"))
    result.warnings = [summarise(what, labels) for what, labels in issues.items()]
    return result


def cut_holes(outlines: list[BaseGeometry], places: list[int],
              holes: list[tuple[int, BaseGeometry]]) -> tuple[list[BaseGeometry], list[int]]:
    """Cut each (place, polygon) hole out of the outline it belongs to; return the outlines and the
    indices of the holes that fall in none.

    Formats without holes (ASAP, ImageScope) write them as separate exclusion polygons, each
    right after its outline: a hole belongs to the outline nearest to it in the file (``places``)
    among those that contain it, else among those it overlaps, one before it first. An island
    drawn inside a hole does not contain the hole, so it is never cut.
    """
    cut = list(outlines)
    if not holes:
        return cut, []
    polygonal = [i for i, g in enumerate(outlines) if g.geom_type in _POLYGONAL]
    tree = shapely.STRtree([outlines[i] for i in polygonal])
    orphans = []
    for k, (place, hole) in enumerate(holes):
        found = tree.query(hole, predicate="covered_by")
        if not len(found):
            found = tree.query(hole, predicate="overlaps")
        if not len(found):
            orphans.append(k)
            continue
        owner = polygonal[min(found.tolist(), key=lambda j: (abs(places[polygonal[j]] - place),
                                                              places[polygonal[j]] > place))]
        cut[owner] = cut[owner].difference(hole)
    return cut, orphans


def _geometry(kind: str, xy: list[tuple[float, float]]) -> tuple[BaseGeometry | None, str | None]:
    """Return the shapely geometry of one ASAP annotation and an issue to report (or None)."""
    if not xy:
        return None, "annotations without coordinates skipped"
    if kind == "Dot" or len(xy) == 1:
        return shapely.Point(xy[0]), None
    if kind == "PointSet":
        return shapely.MultiPoint(xy), None
    if kind == "Measurement" or len(xy) == 2:
        return shapely.LineString(xy[:2]), None
    if kind not in ("Polygon", "Spline", "Rectangle"):
        return None, f"annotations of unknown type '{kind}' skipped"
    geom = shapely.Polygon(xy)
    if geom.is_valid:
        return geom, None
    fixed = polygonal_part(shapely.make_valid(geom))
    return fixed, ("self-intersecting outlines repaired" if fixed is not None else "outlines with no area skipped")


def asap_bytes(annotations: list[Annotation], class_colors: dict[str, RGB]) -> tuple[bytes, list[str]]:
    """Return ASAP XML of ``annotations`` and warnings for what ASAP cannot hold."""
    root = ET.Element("ASAP_Annotations")
    parent = ET.SubElement(root, "Annotations")
    issues: dict[str, list[str]] = {}
    n = holes_written = 0
    for ann in annotations:
        label = f"'{ann.name}'" if ann.name else ann.id[:8]
        color = "#{:02X}{:02X}{:02X}".format(*ann.display_color(class_colors))
        for part_no, (kind, coords, holes) in enumerate(_parts(ann, issues, label)):
            name = ann.name or f"Annotation {n}"
            if part_no:
                name = f"{name} (part {part_no + 1})"
            _write(parent, name, kind, ann.class_name or "None", color, coords)
            for hole_no, ring in enumerate(holes):
                _write(parent, f"{name} (hole {hole_no + 1})", "Polygon", EXCLUSION_GROUP, _EXCLUSION_COLOR, ring)
            n += 1 + len(holes)
            holes_written += len(holes)
    groups = ET.SubElement(root, "AnnotationGroups")
    for name in sorted({a.class_name for a in annotations if a.class_name}):
        rgb = class_colors.get(name)
        g = ET.SubElement(groups, "Group", Name=name, PartOfGroup="None",
                          Color="#{:02X}{:02X}{:02X}".format(*rgb) if rgb else _DEFAULT_GROUP_COLOR)
        ET.SubElement(g, "Attributes")
    if holes_written:
        g = ET.SubElement(groups, "Group", Name=EXCLUSION_GROUP, PartOfGroup="None", Color=_EXCLUSION_COLOR)
        ET.SubElement(g, "Attributes")
    ET.indent(root, "\t")
    warnings = [summarise(what, labels) for what, labels in issues.items()]
    return ET.tostring(root, encoding="utf-8", xml_declaration=True), warnings


def _write(parent: ET.Element, name: str, kind: str, group: str, color: str, coords: list) -> None:
    el = ET.SubElement(parent, "Annotation", Name=name, Type=kind, PartOfGroup=group, Color=color)
    cs = ET.SubElement(el, "Coordinates")
    for order, (x, y) in enumerate(coords):
        ET.SubElement(cs, "Coordinate", Order=str(order), X=repr(float(x)), Y=repr(float(y)))


def _parts(ann: Annotation, issues: dict[str, list[str]], label: str) -> list[tuple[str, list, list[list]]]:
    """Return (ASAP type, coordinates, holes' coordinates) for each ASAP annotation one of ours becomes."""
    geom = valid_for_export(ann.geometry)
    t = geom.geom_type
    if t == "Point":
        return [("Dot", list(geom.coords), [])]
    if t == "MultiPoint":
        return [("PointSet", [p.coords[0] for p in geom.geoms], [])]
    if t == "LineString" and len(geom.coords) == 2:
        return [("Measurement", list(geom.coords), [])]
    if t in ("LineString", "MultiLineString"):
        issues.setdefault("open polylines written as point sets, as ASAP has no polyline", []).append(label)
        lines = geom.geoms if t == "MultiLineString" else [geom]
        return [("PointSet", [c for line in lines for c in line.coords], [])]
    polygons = geom.geoms if t == "MultiPolygon" else [geom]
    kind = "Rectangle" if ann.kind == "rectangle" and t == "Polygon" else "Polygon"
    return [(kind, list(p.exterior.coords)[:-1], [list(r.coords)[:-1] for r in p.interiors]) for p in polygons]
