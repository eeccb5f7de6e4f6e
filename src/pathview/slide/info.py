"""What a slide is: the metadata every face shows and every output records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SlideInfo:
    """Metadata of one opened slide; level-0 pixels, mpp in micrometres per pixel."""

    path: str
    vendor: str
    dimensions: tuple[int, int]
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    mpp: float | None
    mpp_source: str  # "slide", "user" or "none"
    objective_power: float | None
    objective_source: str  # "slide", "derived from mpp" or "none"
    quickhash: str
    associated_images: tuple[str, ...]
    has_icc_profile: bool
    properties: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def level_count(self) -> int:
        return len(self.level_dimensions)

    def to_dict(self, with_properties: bool = False) -> dict[str, Any]:
        """Return a JSON-ready dict (properties only when asked: they can be long)."""
        out = asdict(self)
        if not with_properties:
            out.pop("properties")
        out["level_count"] = self.level_count
        return out


def objective_from_mpp(mpp: float) -> float:
    """Return the nominal objective power for a pixel size (10 µm / mpp, snapped to a common value)."""
    raw = 10.0 / mpp
    common = (1.25, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0)
    nearest = min(common, key=lambda c: abs(c - raw) / c)
    return nearest if abs(nearest - raw) / nearest < 0.15 else round(raw, 2)
