"""The cohort table ``OUT/scan.csv``: one row per slide, merged across runs and shards.

Each run replaces the rows of the slides it handled and keeps the others, so SLURM
array tasks (or a rerun on part of a cohort) writing to the same OUT leave one
table of everything in it. Writes are atomic (temporary file, then rename) and
serialised between runs by a short lock.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

TABLE_FILE = "scan.csv"
#: A row's status: ``ok`` (its results are there and current, whichever run made them), ``failed``,
#: ``skipped`` (the same slide as another path of the run: its results are in that row's folder),
#: ``unfinished`` (stopped mid-slide). In the order report.html counts them.
STATUSES = ("ok", "skipped", "failed", "unfinished")
_FIRST = ("path", "name", "status", "error", "tissue_mm2", "tiles", "top_anomaly")
_LAST = ("seconds", "mpp", "mpp_source", "encoder", "quickhash", "output", "note", "finished")


@dataclass
class SlideRow:
    """What happened to one slide in a scan; ``values`` holds the numbers read from its summary.

    ``reused``: its results were made by an earlier run and kept (said in ``note``; not a column).
    """

    path: str
    status: str
    error: str = ""
    output: str = ""
    quickhash: str = ""
    note: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    finished: float = field(default_factory=time.time)
    reused: bool = False

    def as_dict(self) -> dict[str, Any]:
        d = {"path": self.path, "name": Path(self.path).name, "status": self.status, "error": self.error,
             "output": self.output, "quickhash": self.quickhash, "note": self.note,
             "finished": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.finished))}
        d.update(self.values)
        return d


def summary_values(summary: dict[str, Any]) -> dict[str, Any]:
    """Return the table columns a slide's summary.json gives: area, tiles, scores, artifacts, timings."""
    out: dict[str, Any] = {}
    for key in ("tissue_mm2", "tiles", "unreadable_tiles", "top_anomaly", "anomaly_fraction", "regions",
                "tile_mpp_used", "tiles_per_s"):
        if isinstance(summary.get(key), (int, float)):
            out[key] = _round(summary[key])
    settings = summary.get("settings") if isinstance(summary.get("settings"), dict) else {}
    for column, key in (("encoder", "encoder"), ("mpp", "slide_mpp"), ("mpp_source", "mpp_source"),
                        ("tile_size", "tile_size")):
        if settings.get(key) is not None:
            out[column] = _round(settings[key])
    for name, value in _mapping(summary, "artifact_fractions").items():
        out[f"artifact_{name}"] = _round(value)
    timings = _mapping(summary, "timings")
    for name, value in timings.items():
        out[f"time_{name.removesuffix('_s')}_s"] = _round(value)
    if "total_s" in timings:
        out["seconds"] = _round(timings["total_s"])
    return out


def summary_time(summary: dict[str, Any]) -> float:
    """Return when a summary's results were made (its ``created``), or now when it records no valid time."""
    try:
        return datetime.fromisoformat(str(summary["created"])).timestamp()
    except (KeyError, ValueError):
        return time.time()


def _mapping(summary: dict[str, Any], key: str) -> dict[str, float]:
    value = summary.get(key)
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, (int, float))}


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def read_table(out: Path) -> list[dict[str, str]]:
    """Return the rows of ``OUT/scan.csv`` (empty when there is none yet)."""
    try:
        with open(out / TABLE_FILE, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Return the table's columns: fixed ones first and last, artifact and timing columns between."""
    seen: set[str] = set()
    for r in rows:
        seen.update(r)
    middle = sorted(seen - set(_FIRST) - set(_LAST))
    return [*_FIRST, *middle, *_LAST]


def merge_rows(existing: list[dict[str, Any]], new: Iterable[SlideRow]) -> list[dict[str, Any]]:
    """Return ``existing`` with the rows of the same paths replaced by ``new``, sorted by path."""
    merged = {r["path"]: r for r in existing}
    for row in new:
        merged[row.path] = row.as_dict()
    return [merged[k] for k in sorted(merged)]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers never see half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def table_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(rows), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
