"""Geometry checks shared by the importers and exporters: repair, kind, summaries of warnings.

QuPath 0.6 refuses self-intersecting polygons, so every polygon pathview stores or
writes is valid; repairs are reported, never silent.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

_POLYGONAL = ("Polygon", "MultiPolygon")


def polygonal_part(geometry: BaseGeometry) -> BaseGeometry | None:
    """Return the polygons of ``geometry`` (a repaired outline may hold stray lines), or None."""
    if geometry.geom_type in _POLYGONAL:
        return geometry if not geometry.is_empty else None
    parts = [g for g in getattr(geometry, "geoms", []) if g.geom_type in _POLYGONAL and not g.is_empty]
    if not parts:
        return None
    merged = shapely.union_all(parts)
    return merged if merged.geom_type in _POLYGONAL else None


def repair_polygons(geoms: np.ndarray) -> tuple[np.ndarray, list[int], list[int]]:
    """Make invalid polygons valid in place (vectorised check); return (geoms, repaired, dropped) indices.

    A polygon that has no area left after repair (a line drawn back on itself) is dropped.
    """
    bad = np.flatnonzero(~shapely.is_valid(geoms))
    repaired, dropped = [], []
    for i in bad.tolist():
        fixed = polygonal_part(shapely.make_valid(geoms[i]))
        if fixed is None:
            dropped.append(i)
        else:
            geoms[i] = fixed
            repaired.append(i)
    return geoms, repaired, dropped


def valid_for_export(geometry: BaseGeometry) -> BaseGeometry:
    """Return ``geometry`` made valid if it is a polygon that is not (what QuPath 0.6 needs)."""
    if geometry.geom_type in _POLYGONAL and not geometry.is_valid:
        return polygonal_part(shapely.make_valid(geometry)) or geometry
    return geometry


def kind_for(geometry: BaseGeometry, is_ellipse: bool = False, hint: str | None = None) -> str:
    """Return the annotation kind of an imported geometry (``hint``: a kind the file recorded)."""
    t = geometry.geom_type
    if t in _POLYGONAL:
        if is_ellipse:
            return "ellipse"
        if hint in ("rectangle", "ellipse", "polygon", "brush"):
            return hint
        if t == "Polygon" and len(geometry.exterior.coords) == 5 and not geometry.interiors \
                and abs(geometry.area - geometry.envelope.area) <= 1e-9 * max(geometry.area, 1.0):
            return "rectangle"
        return "polygon"
    if t == "Point":
        return "point"
    if t == "MultiPoint":
        return "points"
    if t == "LineString":
        return hint if hint in ("line", "polyline") else ("line" if len(geometry.coords) == 2 else "polyline")
    if t == "MultiLineString":
        return "polyline"
    raise ValueError(f"{t} geometries are not supported")


def summarise(what: str, labels: Sequence[str], show: int = 5) -> str:
    """Return one warning line for many objects: 'what (15): a, b, c, d, e and 10 more'.

    The count stands apart from ``what`` so one phrase reads right for one object and for many.
    """
    shown = ", ".join(labels[:show])
    more = f" and {len(labels) - show} more" if len(labels) > show else ""
    return f"{what} ({len(labels)}): {shown}{more}"


def outside_slide(geoms: Sequence[BaseGeometry], dimensions: tuple[int, int]) -> list[int]:
    """Return the indices of geometries that reach outside the slide's level-0 area."""
    if not len(geoms):
        return []
    b = shapely.bounds(np.asarray(geoms, dtype=object))
    w, h = dimensions
    return np.flatnonzero((b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] > w) | (b[:, 3] > h)).tolist()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of small objects (4x faster)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
