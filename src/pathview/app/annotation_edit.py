"""Geometry edits the select tool makes: vertex handles, dragging one, moving a shape (no Qt here).

Rectangles and ellipses keep their kind: their handles are the four corners of the
box, and dragging one resizes the shape from the opposite corner. Polygons, brush
strokes and lines get one handle per vertex. Edited outlines are made valid again
(QuPath rejects self-intersecting polygons).
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry.base import BaseGeometry

from ..findings import Annotation, ellipse, rectangle
from ..findings.geometry import polygonal_part

#: Shapes with more vertices than this are moved whole, not edited vertex by vertex.
MAX_HANDLES = 400


def handles(annotation: Annotation) -> np.ndarray:
    """Return the level-0 (N, 2) positions of the annotation's edit handles (none: move only)."""
    g = annotation.geometry
    if annotation.kind in ("rectangle", "ellipse") and g.geom_type == "Polygon":
        x0, y0, x1, y1 = g.bounds
        return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=float)
    if g.geom_type == "Polygon" and not g.interiors:
        xy = shapely.get_coordinates(g.exterior)[:-1]
    elif g.geom_type == "LineString":
        xy = shapely.get_coordinates(g)
    else:
        return np.zeros((0, 2))
    return xy if len(xy) <= MAX_HANDLES else np.zeros((0, 2))


def drag_handle(annotation: Annotation, index: int, x: float, y: float) -> BaseGeometry | None:
    """Return the geometry with handle ``index`` moved to (x, y); None when the result is degenerate."""
    g = annotation.geometry
    if annotation.kind in ("rectangle", "ellipse") and g.geom_type == "Polygon":
        ox, oy = handles(annotation)[(index + 2) % 4]  # the opposite corner stays put
        if abs(x - ox) < 1e-6 or abs(y - oy) < 1e-6:
            return None
        make = rectangle if annotation.kind == "rectangle" else ellipse
        return make(min(ox, x), min(oy, y), max(ox, x), max(oy, y))
    xy = handles(annotation).copy()
    xy[index] = (x, y)
    if g.geom_type == "LineString":
        line = shapely.LineString(xy)
        return line if line.length > 0 else None
    return valid_polygon(shapely.Polygon(xy))


def valid_polygon(polygon: BaseGeometry) -> BaseGeometry | None:
    """Return ``polygon`` made valid (a figure-eight becomes two parts), or None when nothing is left."""
    if polygon.is_valid:
        return polygon if polygon.area > 0 else None
    fixed = polygonal_part(shapely.make_valid(polygon))
    return fixed if fixed is not None and fixed.area > 0 else None


def moved(annotation: Annotation, dx: float, dy: float) -> BaseGeometry:
    return affinity.translate(annotation.geometry, dx, dy)
