"""Say when a finished analysis was made differently from how the viewer would make it now.

An analysis from an older pathview, or a batch scan run with another encoder, tile
size or reference bank, is still worth showing (it is what the pathologist has), but its
scores may not match a fresh run: the Regions dock says so, with what differs, and how
to update it. "Now" is the run chosen in Analysis › Analysis settings.
"""

from __future__ import annotations

from pathlib import Path
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
    if "reference" in settings:
        made, chosen = _bank_name(settings["reference"]), Path(run.reference).name if run.reference else None
        if made != chosen:
            was = f"reference bank '{made}'" if made else "no reference bank"
            differences.append(f"{was}, not " + (f"'{chosen}'" if chosen else "none"))
    if not differences:
        return ""
    return f"Made with {'; '.join(differences)}: re-run (Ctrl+Shift+A) to update."


def _bank_name(fingerprint: str | None) -> str | None:
    """The bank's file name from its recorded fingerprint ``name:entries:digest`` (the bank is not opened to
    compare digests, so a bank rebuilt under the same name reads as the same)."""
    return fingerprint.rsplit(":", 2)[0] if fingerprint else None
