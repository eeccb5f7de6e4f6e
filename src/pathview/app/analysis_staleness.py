"""Say when a finished analysis was made differently from how the viewer would make it now.

An analysis from an older pathview, or a batch scan run with another encoder or tile
size, is still worth showing (it is what the pathologist has), but its scores may not
match a fresh run: the Regions dock says so, with what differs, and how to update it.
"""

from __future__ import annotations

from typing import Any

from ..analysis.analyze import ANALYSIS_VERSION
from ..scan import AnalysisConfig


def staleness_note(settings: dict[str, Any], run: AnalysisConfig) -> str:
    """Return one line naming what differs between recorded ``settings`` and ``run``; '' when nothing does."""
    differences = []
    if settings.get("analysis_version") != ANALYSIS_VERSION:
        differences.append("an earlier version of the analysis")
    encoder, tile_mpp = settings.get("encoder"), settings.get("tile_mpp")
    if encoder is not None and encoder != run.encoder:
        differences.append(f"encoder '{encoder}', not '{run.encoder}'")
    if tile_mpp is not None and tile_mpp != run.tile_mpp:
        differences.append(f"tiles at {tile_mpp:g} µm/px, not {run.tile_mpp:g}")
    if not differences:
        return ""
    return f"Made with {'; '.join(differences)}: re-run (Ctrl+Shift+A) to update."
