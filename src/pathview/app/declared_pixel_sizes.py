"""Pixel sizes the user declared for slides that record none, kept in the workspace by quickhash.

A slide without an mpp is asked for one once: the answer is filed under
``<workspace>/pixel-sizes/<quickhash>.json`` (never beside the slide: shares are often
read-only), so the slide opens with it again, renamed or moved, without asking.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..analysis.outputs import atomic_write
from ..workspace import Workspace


class DeclaredPixelSizes:
    """The µm per pixel declared for each slide (by quickhash) in one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.folder: Path = workspace.root / "pixel-sizes"

    def path(self, quickhash: str) -> Path:
        return self.folder / f"{quickhash}.json"

    def get(self, quickhash: str) -> float | None:
        """Return the declared pixel size, or None when none was declared (or its file is unreadable)."""
        try:
            mpp = float(json.loads(self.path(quickhash).read_text())["mpp"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # nothing declared, or a damaged file: ask again rather than guess
        return mpp if mpp > 0 else None

    def remember(self, quickhash: str, mpp: float) -> None:
        """File ``mpp`` for the slide; raises OSError when the workspace cannot be written."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path(quickhash), lambda p: p.write_text(json.dumps({"mpp": mpp})))
