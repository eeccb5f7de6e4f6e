"""What the pathologist decided about a slide's regions (dismissed, accepted), kept in the workspace.

A small JSON file per slide (by quickhash) under ``<workspace>/analysis-reviews/``,
not inside the analysis folder: a scan folder may be read-only or shared, and a
rerun of the analysis must not forget the decisions. Region ids are stable across
reruns that find the same region, so a dismissed region stays dismissed.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..analysis.outputs import atomic_write
from ..workspace import Workspace


class RegionReviews:
    """Dismissed region ids and accepted ones (region id -> annotation id) for one slide."""

    def __init__(self, workspace: Workspace, quickhash: str) -> None:
        self.path: Path = workspace.root / "analysis-reviews" / f"{quickhash}.json"
        self.dismissed: set[str] = set()
        self.accepted: dict[str, str] = {}
        try:
            data = json.loads(self.path.read_text())
            self.dismissed = set(data.get("dismissed", []))
            self.accepted = dict(data.get("accepted", {}))
        except (FileNotFoundError, json.JSONDecodeError, AttributeError):
            pass  # nothing decided yet (or an unreadable file: start afresh rather than block the viewer)

    def dismiss(self, region_id: str) -> None:
        self.dismissed.add(region_id)
        self._save()

    def restore(self, region_id: str) -> None:
        self.dismissed.discard(region_id)
        self._save()

    def accept(self, region_id: str, annotation_id: str) -> None:
        self.accepted[region_id] = annotation_id
        self.dismissed.discard(region_id)
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"dismissed": sorted(self.dismissed), "accepted": self.accepted}
        atomic_write(self.path, lambda p: p.write_text(json.dumps(data, indent=1)))
