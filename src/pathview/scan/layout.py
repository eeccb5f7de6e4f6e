"""Where a scan puts each slide's outputs, when they count as complete, and how to find them again.

``OUT/<name>-<quickhash[:12]>/`` holds one slide's folder (../shared/DESIGN.md):
the name keeps it readable, the quickhash keeps renamed or same-named slides apart.
A folder is complete only when ``summary.json`` (written last, atomically) parses,
names the same slide, was made with the settings asked for now, and the files it
describes exist; anything less is recomputed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"
TILES_FILE = "tiles.h5"
#: Files of a finished slide folder besides summary.json.
OUTPUT_FILES = (TILES_FILE, "findings.geojson", "heatmap.png", "thumbnail.png")
HASH_CHARS = 12


def output_name(slide: Path, quickhash: str) -> str:
    """Return the folder name for a slide: its name (no suffix) and the start of its quickhash."""
    stem = slide.name if slide.is_dir() else slide.stem
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "slide"
    return f"{safe[:80]}-{quickhash[:HASH_CHARS]}"


def read_summary(folder: Path) -> dict[str, Any] | None:
    """Return the parsed ``summary.json`` of a folder, or None when it is missing or not valid JSON."""
    try:
        data = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def summary_quickhash(summary: dict[str, Any]) -> str | None:
    """Return the slide quickhash a summary records."""
    slide = summary.get("slide")
    if isinstance(slide, dict) and slide.get("quickhash"):
        return str(slide["quickhash"])
    value = summary.get("slide_quickhash") or summary.get("quickhash")
    return str(value) if value else None


def changed_settings(summary: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Return '<key>: old -> new' for each expected setting the summary's ``settings`` differ in."""
    made = summary.get("settings")
    if not isinstance(made, dict):
        return ["settings: none recorded"]
    out = []
    for key, want in expected.items():
        have = made.get(key)
        same = have == want or (isinstance(have, (int, float)) and isinstance(want, (int, float))
                                and abs(float(have) - float(want)) <= 1e-9 * max(1.0, abs(float(want))))
        if not same:
            out.append(f"{key}: {have!r} -> {want!r}")
    return out


def complete_summary(folder: Path, quickhash: str, expected: dict[str, Any]) -> tuple[dict | None, str]:
    """Return (summary, '') when ``folder`` is complete for these settings, else (None, why not)."""
    summary = read_summary(folder)
    if summary is None:
        why = "no summary.json" if not (folder / SUMMARY_FILE).exists() else "summary.json is unreadable"
        return None, why
    if summary_quickhash(summary) not in (None, quickhash):
        return None, "summary.json is for another slide"
    changed = changed_settings(summary, expected)
    if changed:
        return None, "settings changed (" + "; ".join(changed) + ")"
    missing = [f for f in OUTPUT_FILES if not (folder / f).is_file()]
    if missing:
        return None, f"missing {', '.join(missing)}"
    if tiles_quickhash(folder / TILES_FILE) != quickhash:
        return None, "tiles.h5 is unreadable or for another slide"
    return summary, ""


def tiles_quickhash(path: Path) -> str | None:
    """Return the ``slide_quickhash`` attribute of a tiles.h5, or None when it cannot be read."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("slide_quickhash")
    except (OSError, ValueError):
        return None
    return value.decode() if isinstance(value, bytes) else (str(value) if value is not None else None)


def reset_folder(folder: Path) -> None:
    """Mark a slide folder unfinished before recomputing it: drop summary.json and leftover partial files.

    Called with the slide's lock held, so no other run writes here.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SUMMARY_FILE).unlink(missing_ok=True)
    for p in folder.iterdir():
        if p.name.startswith(".") and p.is_file():  # hidden temporaries of an interrupted write
            p.unlink(missing_ok=True)


def find_scan_output(where: str | os.PathLike | Iterable[str | os.PathLike] | Any, quickhash: str) -> Path | None:
    """Return the newest complete output folder for the slide ``quickhash``, or None.

    ``where`` is a scan output folder (``pathview scan -o OUT``), a workspace (or its
    root, whose ``analysis/<quickhash>`` folders are searched), one slide's folder, or
    a list of these. A folder matches when its summary.json or tiles.h5 records the
    quickhash; the newest summary wins when several scans hold the slide.
    """
    roots = _roots(where)
    found: list[tuple[float, Path]] = []
    for root in roots:
        candidates = [root, root / "analysis" / quickhash, *root.glob(f"*-{quickhash[:HASH_CHARS]}")]
        for folder in candidates:
            summary = read_summary(folder)
            if summary is None:
                continue
            recorded = summary_quickhash(summary) or tiles_quickhash(folder / TILES_FILE)
            if recorded == quickhash:
                found.append(((folder / SUMMARY_FILE).stat().st_mtime, folder))
    return max(found)[1] if found else None


def _roots(where: Any) -> list[Path]:
    if isinstance(where, (str, os.PathLike)):
        return [Path(where)]
    from ..workspace import Workspace

    if isinstance(where, Workspace):
        return [where.root]
    return [p for w in where for p in _roots(w)]
