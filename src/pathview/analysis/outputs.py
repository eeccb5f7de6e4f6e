"""The scan output folder's file names and the one way every file in it is written: atomically."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from .store import TILES_FILE

__all__ = ["FINDINGS_FILE", "HEATMAP_FILE", "SUMMARY_FILE", "THUMBNAIL_FILE", "TILES_FILE", "atomic_write"]

FINDINGS_FILE = "findings.geojson"
HEATMAP_FILE = "heatmap.png"
THUMBNAIL_FILE = "thumbnail.png"
SUMMARY_FILE = "summary.json"


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a hidden temporary path beside ``path``, then rename it into place.

    A reader sees the old file or the whole new one, never half of one; on error the
    temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}-{threading.get_ident()}")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
