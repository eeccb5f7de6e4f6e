"""Pixel sizes from a CSV, for slides that record none (``--mpp-csv``).

Labs keep such tables from the scanner's log or the LIS: one row per slide, a
column naming the slide (file name, name without suffix, or path) and one with its
µm per pixel. Header names are matched loosely (``slide``/``path``/``file``/``name``
and ``mpp``/``mpp_x``/``microns_per_pixel``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PathviewError

_SLIDE_COLUMNS = ("slide", "path", "file", "filename", "name", "slide_id")
_MPP_COLUMNS = ("mpp", "mpp_x", "microns_per_pixel", "um_per_px")


class MppTableError(PathviewError):
    """The --mpp-csv file is missing, unreadable or malformed."""

    def __init__(self, path: str | os.PathLike, cause: str) -> None:
        self.path = Path(path)
        super().__init__(f"cannot use mpp table '{self.path.name}': {cause}")


@dataclass(frozen=True)
class MppTable:
    """Slide name → pixel size; looked up by full path, file name, then name without suffix."""

    by_key: dict[str, float] = field(default_factory=dict)

    def lookup(self, slide: Path) -> float | None:
        """Return the pixel size the table gives ``slide``, or None."""
        for key in (str(slide), slide.name, slide.stem):
            if key in self.by_key:
                return self.by_key[key]
        return None

    def __len__(self) -> int:
        return len(self.by_key)


def read_mpp_table(path: str | os.PathLike) -> MppTable:
    """Read a CSV of slide names and pixel sizes, raising :class:`MppTableError` with the bad line."""
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise MppTableError(p, exc.strerror or str(exc)) from None
    if not rows:
        raise MppTableError(p, "it has no rows under its header")
    header = {h.strip().lower(): h for h in rows[0].keys() if h}
    slide_col = next((header[c] for c in _SLIDE_COLUMNS if c in header), None)
    mpp_col = next((header[c] for c in _MPP_COLUMNS if c in header), None)
    if slide_col is None or mpp_col is None:
        raise MppTableError(p, f"its header needs a 'slide' and an 'mpp' column, found {list(rows[0].keys())}")
    table: dict[str, float] = {}
    for line, row in enumerate(rows, start=2):
        name, value = (row.get(slide_col) or "").strip(), (row.get(mpp_col) or "").strip()
        try:
            mpp = float(value)
        except ValueError:
            raise MppTableError(p, f"line {line}: mpp {value!r} is not a number") from None
        if not name or not 0 < mpp < 1000:
            raise MppTableError(p, f"line {line}: needs a slide name and a positive mpp (µm per pixel)")
        table[name] = mpp
        if os.sep in name or "/" in name:
            table[str((p.parent / Path(name).expanduser()).resolve())] = mpp  # relative to the CSV
    return MppTable(table)
