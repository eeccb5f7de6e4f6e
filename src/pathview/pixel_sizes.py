"""Pixel sizes the user declared for slides that record none, kept in the workspace by quickhash.

A slide without an mpp is asked for one once (in the viewer): the answer is filed under
``<workspace>/pixel-sizes/<quickhash>.json`` (never beside the slide: shares are often
read-only), so the slide opens with it again, renamed or moved, without asking, in the
viewer and in the commands that take ``--workspace``.
"""

from __future__ import annotations

import json
from pathlib import Path

from .analysis.outputs import atomic_write
from .slide import Slide, open_slide
from .workspace import Workspace


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


def open_declared(path: str | Path, workspace: Workspace, mpp: float | None = None) -> Slide:
    """Open a slide with ``mpp`` if given, else with the pixel size declared for it in ``workspace``
    when the slide records none."""
    slide = open_slide(path, mpp=mpp)
    if mpp is not None or slide.info.mpp is not None:
        return slide
    declared = DeclaredPixelSizes(workspace).get(slide.quickhash)
    if declared is None:
        return slide
    slide.close()
    return open_slide(path, mpp=declared)
