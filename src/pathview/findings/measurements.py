"""Measure annotations in µm from the slide's pixel size, or in clearly labelled pixels without one.

The unit is in every measurement's name ("Area µm²", "Area px²") so a number never
travels without it, in the panel, the CSV or the report.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from .model import Annotation


#: The names :func:`measure_geometry` gives: recomputed from the shape whenever shown or written.
COMPUTED_NAMES = frozenset({"Area µm²", "Perimeter µm", "Length µm", "Area px²", "Perimeter px", "Length px",
                            "Points"})


def measure_geometry(geometry: BaseGeometry, mpp: float | None) -> dict[str, float]:
    """Return area and perimeter (areas), length (lines) or count (points), unit in the name."""
    unit, scale = ("µm", mpp) if mpp else ("px", 1.0)
    kind = geometry.geom_type
    if kind in ("Polygon", "MultiPolygon"):
        return {f"Area {unit}²": geometry.area * scale * scale, f"Perimeter {unit}": geometry.length * scale}
    if kind in ("LineString", "MultiLineString"):
        return {f"Length {unit}": geometry.length * scale}
    if kind == "MultiPoint":
        return {"Points": float(len(geometry.geoms))}
    if kind == "Point":
        return {"Points": 1.0}
    return {}


def measure_many(geometries: list[BaseGeometry], mpp: float | None) -> list[dict[str, float]]:
    """Return :func:`measure_geometry` of many geometries, computed in vectorised passes."""
    geoms = np.array(geometries, dtype=object)
    unit, scale = ("µm", mpp) if mpp else ("px", 1.0)
    area_name, perimeter_name, length_name = f"Area {unit}²", f"Perimeter {unit}", f"Length {unit}"
    types = shapely.get_type_id(geoms).tolist()
    areas = (shapely.area(geoms) * scale * scale).tolist()
    lengths = (shapely.length(geoms) * scale).tolist()
    points = shapely.get_num_geometries(geoms).tolist()
    out = []
    for t, area, length, n in zip(types, areas, lengths, points):
        if t in (3, 6):  # Polygon, MultiPolygon
            out.append({area_name: area, perimeter_name: length})
        elif t in (1, 5):  # LineString, MultiLineString
            out.append({length_name: length})
        elif t in (0, 4):  # Point, MultiPoint
            out.append({"Points": float(n)})
        else:
            out.append({})
    return out


def measure(annotation: Annotation, mpp: float | None) -> dict[str, float]:
    """Return the measurements of ``annotation`` (see :func:`measure_geometry`)."""
    return measure_geometry(annotation.geometry, mpp)


def format_measurement(name: str, value: float) -> str:
    """Return 'Area µm²: 12,345.6' style text (large areas also in mm²)."""
    if value != value:  # NaN
        return f"{name}: n/a"
    text = f"{name}: {value:,.1f}" if abs(value) >= 10 else f"{name}: {value:.3g}"
    if name == "Area µm²" and value >= 1e5:
        text += f" ({value / 1e6:.3f} mm²)"
    return text
