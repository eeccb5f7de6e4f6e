"""QuPath GeoJSON: read what QuPath (and other tools) write, write what QuPath 0.6 reads.

Reading accepts a FeatureCollection, one Feature, a list of Features or a bare geometry;
``properties`` as QuPath writes them (objectType, classification {name, color} or the
older {name, colorRGB} or a plain string, measurements as a dict or a list of
{name, value}, name, color, isLocked, ``geometry.isEllipse``, ``nucleusGeometry``).
Polygons are built in one vectorised pass (100,000 nuclei in about a second), then
checked: self-intersections are repaired with a warning, NaN coordinates refuse the file.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from .errors import AnnotationImportError
from .geometry import gc_paused, kind_for, repair_polygons, summarise, valid_for_export
from .imported import MAX_OBJECTS, ImportResult
from .measurements import COMPUTED_NAMES, measure_many
from .model import OBJECT_TYPES, RGB, SOURCES, Annotation, new_ids
from .store import AssistantAnswer

_GEOMETRY_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}
MAX_BYTES = 2_000_000_000
_AREA_KINDS = ("rectangle", "ellipse", "polygon", "brush")
_KNOWN_PROPERTIES = {"objectType", "classification", "name", "color", "isLocked", "measurements", "pathview"}


# -- reading ------------------------------------------------------------------------------------
def read_geojson(path: str | Path) -> ImportResult:
    """Read a QuPath GeoJSON file; raise :class:`AnnotationImportError` with the cause if it is unusable."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise AnnotationImportError(path, f"it is {path.stat().st_size / 1e9:.1f} GB, more than the "
                                              f"{MAX_BYTES / 1e9:.0f} GB pathview imports at once; split the file")
        data = path.read_bytes()
    except OSError as exc:
        raise AnnotationImportError(path, exc.strerror or str(exc)) from None
    with gc_paused():
        try:
            doc = orjson.loads(data)  # 2x the standard library's speed on 100,000 polygons
        except orjson.JSONDecodeError:
            try:  # NaN literals (some tools write them) or a real error: let json accept or explain it
                doc = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise AnnotationImportError(path, f"not valid JSON ({exc})") from None
        features = _features(doc, path)
        if len(features) > MAX_OBJECTS:
            raise AnnotationImportError(path, f"it holds {len(features):,} objects, more than the {MAX_OBJECTS:,} "
                                              "pathview imports at once; split the file")
        return _Reader(path).read(features)


def _features(doc: Any, path: Path) -> list:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        kind = doc.get("type")
        if kind == "FeatureCollection":
            if not isinstance(doc.get("features"), list):
                raise AnnotationImportError(path, "its FeatureCollection has no 'features' list")
            return doc["features"]
        if kind == "Feature":
            return [doc]
        if kind in _GEOMETRY_DEPTH or kind == "GeometryCollection":
            return [{"type": "Feature", "geometry": doc, "properties": {}}]
    raise AnnotationImportError(path, "not GeoJSON: expected a FeatureCollection, a Feature, a list of "
                                      "features or a geometry")


def _label(i: int, props: dict) -> str:
    name = props.get("name")
    return f"feature {i + 1} ('{name}')" if isinstance(name, str) and name else f"feature {i + 1}"


def _positions_ok(obj: Any, depth: int) -> None:
    """Raise ValueError unless ``obj`` nests ``depth`` lists deep down to finite [x, y(, z)] numbers."""
    if depth == 0:
        if not (isinstance(obj, list) and len(obj) in (2, 3)
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj)):
            raise ValueError("coordinates must be [x, y] pairs of numbers")
        if not all(math.isfinite(v) for v in obj):
            raise ValueError("a coordinate is not a number (NaN or infinity)")
        return
    if not isinstance(obj, list) or not obj:
        raise ValueError("its coordinates are empty or not a list")
    for item in obj:
        _positions_ok(item, depth - 1)


def strict_geometry(g: Any) -> BaseGeometry:
    """Return the shapely geometry of one GeoJSON geometry, or raise ValueError saying what is wrong."""
    if not isinstance(g, dict) or g.get("type") not in _GEOMETRY_DEPTH:
        kind = g.get("type") if isinstance(g, dict) else type(g).__name__
        raise ValueError(f"geometry type {kind!r} is not supported")
    _positions_ok(g.get("coordinates"), _GEOMETRY_DEPTH[g["type"]])
    try:
        geom = shapely.force_2d(shape(g))
    except (ValueError, TypeError, shapely.errors.GEOSException):
        raise ValueError(f"its coordinates do not form a {g['type']} (too few points, or 2D and 3D points "
                         "mixed)") from None
    if geom.is_empty:
        raise ValueError("its geometry is empty")
    return geom


def _rgb(value: Any) -> RGB | None:
    if isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in value):
        return (value[0], value[1], value[2])
    if isinstance(value, int) and not isinstance(value, bool):  # QuPath's packed ARGB (older exports)
        return ((value >> 16) & 255, (value >> 8) & 255, value & 255)
    return None


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.issues: dict[str, list[str]] = {}
        self.rectangles: set[int] = set()  # features whose polygon is an axis-aligned box
        self.class_names: set[str] = set()
        self.class_cache: dict[tuple, tuple[str, RGB | None]] = {}

    def _issue(self, what: str, label: str) -> None:
        self.issues.setdefault(what, []).append(label)

    def _fail(self, label: str, cause: str) -> AnnotationImportError:
        return AnnotationImportError(self.path, f"{label}: {cause}")

    def read(self, features: list) -> ImportResult:
        props_of: list[dict] = []
        polygon_items: list[tuple[int, list]] = []  # (feature, polygons as lists of rings)
        geoms: list[BaseGeometry | None] = [None] * len(features)
        for i, f in enumerate(features):
            if not isinstance(f, dict):
                raise self._fail(f"item {i + 1}", "is not a GeoJSON feature")
            props = f.get("properties") if isinstance(f.get("properties"), dict) else {}
            props_of.append(props)
            g = f.get("geometry")
            if not isinstance(g, dict):
                self._issue("features without a geometry skipped", _label(i, props))
                continue
            if g.get("type") == "Polygon":
                polygon_items.append((i, [g.get("coordinates")]))
            elif g.get("type") == "MultiPolygon" and isinstance(g.get("coordinates"), list):
                polygon_items.append((i, g["coordinates"]))
            elif g.get("type") == "GeometryCollection":
                self._issue("geometry collections skipped (not supported)", _label(i, props))
            else:
                try:
                    geoms[i] = strict_geometry(g)
                except ValueError as exc:
                    raise self._fail(_label(i, props), str(exc)) from None
        self._build_polygons(features, props_of, polygon_items, geoms)
        result = ImportResult()
        kept = [i for i, g in enumerate(geoms) if g is not None]
        now = time.time()
        result.annotations = [self._annotation(i, features[i]["geometry"], props_of[i], geoms[i], result, aid, now)
                              for i, aid in zip(kept, new_ids(len(kept)))]
        result.warnings = [summarise(what, labels) for what, labels in self.issues.items()]
        return result

    def _build_polygons(self, features: list, props_of: list[dict], items: list[tuple[int, list]],
                        geoms: list) -> None:
        """Build every Polygon/MultiPolygon in one vectorised pass; on bad input find the culprit."""
        if not items:
            return
        coords: list = []
        lengths: list[int] = []
        ring_part: list[int] = []
        part_owner: list[int] = []
        try:
            for k, (_, polygons) in enumerate(items):
                for rings in polygons:
                    if not rings:
                        raise ValueError
                    for ring in rings:
                        if len(ring) < 3:
                            raise ValueError
                        coords += ring
                        lengths.append(len(ring))
                        ring_part.append(len(part_owner))
                    part_owner.append(k)
            if set(map(len, coords)) == {2}:  # plain [x, y] pairs: flatten without nested-list conversion
                xy = np.fromiter(itertools.chain.from_iterable(coords), np.float64, count=2 * len(coords))
                xy = xy.reshape(-1, 2)
            else:
                xy = np.asarray(coords, dtype=np.float64)
            if xy.ndim != 2 or xy.shape[1] not in (2, 3) or not np.isfinite(xy).all():
                raise ValueError
            rings = shapely.linearrings(xy[:, :2], indices=np.repeat(np.arange(len(lengths)), lengths))
            parts = shapely.polygons(rings, indices=np.asarray(ring_part))
        except (ValueError, TypeError, shapely.errors.GEOSException):
            for i, _ in items:  # slow path, only to name the first bad feature
                try:
                    strict_geometry(features[i]["geometry"])
                except ValueError as exc:
                    raise self._fail(_label(i, props_of[i]), str(exc)) from None
            raise self._fail("a polygon", "its coordinates are not valid GeoJSON") from None
        owner = np.asarray(part_owner, dtype=np.int64)
        counts = np.bincount(owner, minlength=len(items))
        if (counts == 0).any():
            i = items[int(np.flatnonzero(counts == 0)[0])][0]
            raise self._fail(_label(i, props_of[i]), "its MultiPolygon has no polygons")
        built = np.empty(len(items), dtype=object)
        multi = np.array([features[i]["geometry"]["type"] == "MultiPolygon" for i, _ in items])
        in_multi = multi[owner]
        built[owner[~in_multi]] = parts[~in_multi]
        if multi.any():
            multi_items = np.flatnonzero(multi)
            built[multi_items] = shapely.multipolygons(parts[in_multi],
                                                       indices=np.searchsorted(multi_items, owner[in_multi]))
        built, repaired, dropped = repair_polygons(built)
        boxes = shapely.envelope(built)
        rect = ((shapely.get_type_id(built) == 3) & (shapely.get_num_coordinates(built) == 5)
                & np.isclose(shapely.area(built), shapely.area(boxes), rtol=1e-9, atol=1e-9))
        self.rectangles = {items[k][0] for k in np.flatnonzero(rect).tolist()}
        for k in repaired:
            self._issue("self-intersecting outlines repaired", _label(items[k][0], props_of[items[k][0]]))
        for k in dropped:
            self._issue("outlines with no area left after repair skipped", _label(items[k][0], props_of[items[k][0]]))
        dropped_set = set(dropped)
        for k, (i, _) in enumerate(items):
            geoms[i] = None if k in dropped_set else built[k]

    def _annotation(self, i: int, g: dict, props: dict, geom: BaseGeometry, result: ImportResult,
                    annotation_id: str, now: float) -> Annotation:
        """Build one annotation (the hot loop of a 100,000-object import: no per-object shapely calls)."""
        own = props.get("pathview")
        own = own if isinstance(own, dict) else {}
        class_name, class_color = self._classification(props.get("classification"), i, props)
        if class_name is not None and class_name not in self.class_names:
            self.class_names.add(class_name)
            result.add_class(class_name, class_color)
        object_type = props.get("objectType", "annotation")
        if object_type not in OBJECT_TYPES:
            self._issue("unknown object types read as annotations", _label(i, props))
            object_type = "annotation"
        hint = own.get("kind")
        if g["type"] in ("Polygon", "MultiPolygon"):
            kind = ("ellipse" if g.get("isEllipse") is True else hint if hint in _AREA_KINDS
                    else "rectangle" if i in self.rectangles else "polygon")
        else:
            kind = kind_for(geom, hint=hint)
        name, note, color = props.get("name"), own.get("note"), props.get("color")
        created, modified = own.get("created"), own.get("modified")
        return Annotation.trusted({
            "geometry": geom, "kind": kind, "class_name": class_name, "color": None if color is None else _rgb(color),
            "name": name if isinstance(name, str) else ("" if name is None else str(name)),
            "note": note if isinstance(note, str) else "", "locked": props.get("isLocked") is True,
            "source": own.get("source") if own.get("source") in SOURCES else "import", "object_type": object_type,
            "measurements": self._measurements(props.get("measurements"), i, props, drop_computed=bool(own)),
            "extra": {k: v for k, v in props.items() if k not in _KNOWN_PROPERTIES}, "id": annotation_id,
            "created": float(created) if isinstance(created, (int, float)) else now,
            "modified": float(modified) if isinstance(modified, (int, float)) else now,
        })

    def _classification(self, value: Any, i: int, props: dict) -> tuple[str | None, RGB | None]:
        if value is None:
            return None, None
        if isinstance(value, str):
            return value or None, None
        if isinstance(value, dict):
            name, color = value.get("name"), value.get("color")
            key = (name, tuple(color) if isinstance(color, list) else color)
            if key in self.class_cache:  # 100,000 cells share a handful of classes
                return self.class_cache[key]
            if name is None and isinstance(value.get("names"), list):  # a derived class, e.g. Tumor: Positive
                name = ": ".join(str(n) for n in value["names"])
            if isinstance(name, str) and name:
                found = name, _rgb(color) or _rgb(value.get("colorRGB"))
                if "names" not in value:
                    self.class_cache[key] = found
                return found
        self._issue("unreadable classifications ignored", _label(i, props))
        return None, None

    def _measurements(self, value: Any, i: int, props: dict, drop_computed: bool = False) -> dict[str, float]:
        """Read a feature's measurements; ``drop_computed``: leave out those pathview itself wrote (its
        own export), which it recomputes from the shape, so an edited shape never shows a stale area."""
        if isinstance(value, list):  # older QuPath: [{name, value}, ...]
            value = {m.get("name"): m.get("value") for m in value if isinstance(m, dict)}
        if not isinstance(value, dict):
            if value is not None:
                self._issue("unreadable measurement lists ignored", _label(i, props))
            return {}
        out = {}
        for k, v in value.items():
            if drop_computed and k in COMPUTED_NAMES:
                continue
            try:
                if isinstance(v, bool) or not isinstance(k, str):
                    raise ValueError
                out[k] = float(v)  # numbers, and "NaN"/"Infinity" as QuPath writes them
            except (TypeError, ValueError):
                self._issue("measurements that are not numbers dropped", f"{_label(i, props)} '{k}'")
        return out


# -- writing ------------------------------------------------------------------------------------
def _number(v: float) -> float | str:
    return v if math.isfinite(v) else ("NaN" if v != v else ("Infinity" if v > 0 else "-Infinity"))


def _geometries_json(annotations: list[Annotation]) -> list[str]:
    """Return each geometry as GeoJSON text, made valid where needed, in one vectorised pass."""
    geoms = np.array([a.geometry for a in annotations], dtype=object)
    for k in np.flatnonzero(~shapely.is_valid(geoms)).tolist():
        geoms[k] = valid_for_export(geoms[k])
    texts = shapely.to_geojson(geoms).tolist()
    return [t[:-1] + ',"isEllipse":true}' if a.kind == "ellipse" else t for a, t in zip(annotations, texts)]


def _feature(ann: Annotation, geometry_json: str, measured: dict[str, float], class_colors: dict[str, RGB],
             answers: list[AssistantAnswer]) -> dict:
    props: dict[str, Any] = {"objectType": ann.object_type}
    if ann.name:
        props["name"] = ann.name
    if ann.class_name:
        color = class_colors.get(ann.class_name) or ann.display_color(class_colors)
        props["classification"] = {"name": ann.class_name, "color": list(color)}
    if ann.color is not None:
        props["color"] = list(ann.color)
    if ann.locked:
        props["isLocked"] = True
    props["measurements"] = {k: _number(v) for k, v in {**ann.measurements, **measured}.items()}
    props.update(ann.extra)
    props["pathview"] = {
        "kind": ann.kind, "source": ann.source, "note": ann.note, "created": ann.created, "modified": ann.modified,
        **({"assistant": [{"question": a.question, "answer": a.answer, "model": a.model, "created": a.created,
                           "disclaimer": "AI-generated, not a diagnosis"} for a in answers]} if answers else {}),
    }
    return {"type": "Feature", "id": ann.id, "geometry": orjson.Fragment(geometry_json), "properties": props}


def geojson_bytes(annotations: list[Annotation], class_colors: dict[str, RGB], mpp: float | None,
                  answers: dict[str, list[AssistantAnswer]] | None = None) -> bytes:
    """Return a QuPath-importable FeatureCollection of ``annotations`` as UTF-8 JSON.

    Polygons are made valid, ellipses carry ``geometry.isEllipse``, measurements are the
    imported ones plus pathview's (unit in the name), NaN written as QuPath writes it.
    """
    answers = answers or {}
    geometries = _geometries_json(annotations)
    measured = measure_many([a.geometry for a in annotations], mpp)
    features = [_feature(a, g, m, class_colors, answers.get(a.id, []))
                for a, g, m in zip(annotations, geometries, measured)]
    return orjson.dumps({"type": "FeatureCollection", "features": features})
