"""Regions as a QuPath-importable GeoJSON FeatureCollection (``findings.geojson``).

QuPath's rules (../shared/DESIGN.md): ``objectType`` annotation, ``classification``
``{name, color}``, ``measurements`` ``{name: number}``, coordinates in level-0 pixels,
polygons closed and valid (QuPath 0.6 rejects self-intersections).
"""

from __future__ import annotations

import uuid
from typing import Any

from shapely.geometry import mapping

from .regions import CLASS_COLORS, Region


def region_feature(region: Region, level0_mpp: float, slide_quickhash: str) -> dict[str, Any]:
    """Return one region as a QuPath annotation Feature."""
    cx, cy = region.centroid()
    return {
        "type": "Feature",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pathview:{slide_quickhash}:{region.cls}:{cx:.0f},{cy:.0f}")),
        "geometry": mapping(region.geometry),
        "properties": {
            "objectType": "annotation",
            "name": f"#{region.rank} {region.title}",
            "classification": {"name": region.title, "color": list(CLASS_COLORS[region.cls])},
            "measurements": {
                "rank": region.rank,
                "score": round(region.score, 4),
                "max score": round(region.max_score, 4),
                "tiles": region.n_tiles,
                "area mm^2": round(region.area_mm2(level0_mpp), 5),
            },
            "pathview": {"kind": "anomaly-region", "class": region.cls},
        },
    }


def regions_geojson(regions: list[Region], level0_mpp: float, slide_quickhash: str) -> dict[str, Any]:
    """Return the regions as a FeatureCollection, best first."""
    return {"type": "FeatureCollection",
            "features": [region_feature(r, level0_mpp, slide_quickhash) for r in regions]}
