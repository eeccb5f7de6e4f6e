"""Identify a slide before it is scheduled: its quickhash (hence its output folder) and pixel size.

Opening a slide only reads its headers (milliseconds); decoding pixels is left to
the workers. A slide that cannot be opened, or that has no pixel size anywhere,
becomes a failure with its reason here, before any worker spends time on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import PathviewError
from .discover import SlideSource
from .layout import output_name
from .mpp_table import MppTable


@dataclass(frozen=True)
class SlideIdentity:
    """A slide ready to schedule: ``key`` is its output folder name (and lock name)."""

    source: SlideSource
    quickhash: str
    key: str
    mpp: float
    mpp_source: str
    slide_mpp: float | None  # the override to pass on (from the table), None to use the slide's own


@dataclass(frozen=True)
class SlideRejected:
    """A slide that cannot be scanned, and why, in words for a person."""

    source: SlideSource
    message: str


def identify(source: SlideSource, table: MppTable | None) -> SlideIdentity | SlideRejected:
    """Open ``source`` for its identity; never raises for a bad slide."""
    from ..slide import open_slide

    try:
        with open_slide(source.path) as slide:
            info = slide.info
    except PathviewError as exc:
        return SlideRejected(source, str(exc))
    except Exception as exc:  # an unforeseen library error on this file: it is this slide's failure
        return SlideRejected(source, f"cannot open '{source.name}': {type(exc).__name__}: {exc}")
    override = None
    mpp, mpp_source = info.mpp, info.mpp_source
    if mpp is None:
        override = table.lookup(source.path) if table is not None else None
        if override is None:
            hint = ("add a row for it to the --mpp-csv table" if table is not None
                    else "give its pixel size in a --mpp-csv table")
            return SlideRejected(source, f"'{source.name}' records no pixel size (mpp); {hint} "
                                         "(e.g. 0.25 for 40x, 0.5 for 20x)")
        mpp, mpp_source = override, "user"
    return SlideIdentity(source, info.quickhash, output_name(Path(source.path), info.quickhash),
                         float(mpp), mpp_source, override)
