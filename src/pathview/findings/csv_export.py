"""CSV of measurements: one row per annotation, units in the column names, the mpp used recorded."""

from __future__ import annotations

import csv
import io
import math

from .measurements import measure_many
from .model import Annotation

_FIXED = ("id", "name", "class", "kind", "source", "object type", "locked", "note",
          "centroid x px", "centroid y px", "mpp", "mpp source")


def csv_bytes(annotations: list[Annotation], mpp: float | None, mpp_source: str) -> bytes:
    """Return the measurement table (UTF-8 with BOM, so spreadsheet programs read µ and ² right)."""
    rows, measured_cols, imported_cols = [], {}, {}
    for ann, measured in zip(annotations, measure_many([a.geometry for a in annotations], mpp)):
        measured_cols.update(dict.fromkeys(measured))
        imported_cols.update(dict.fromkeys(ann.measurements))
        rows.append((ann, measured))
    imported = [c for c in imported_cols if c not in measured_cols]
    header = [*_FIXED, *measured_cols, *(f"imported: {c}" for c in imported)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for ann, measured in rows:
        c = ann.geometry.centroid
        writer.writerow([
            ann.id, ann.name, ann.class_name or "", ann.kind, ann.source, ann.object_type, "yes" if ann.locked else "no",
            ann.note, f"{c.x:.2f}", f"{c.y:.2f}", f"{mpp:g}" if mpp else "", mpp_source,
            *(_cell(measured.get(col)) for col in measured_cols),
            *(_cell(ann.measurements.get(col)) for col in imported),
        ])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.10g}" if math.isfinite(value) else "NaN"
