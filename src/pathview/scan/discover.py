"""Find the slides to scan under the paths a user gives, and split them into shards.

A file is a slide when its suffix is a whole-slide format (or it matches an
``--include`` glob). DICOM is different: a series of ``.dcm`` files is one slide, and
one folder may hold several series (or single-file slides), so the ``.dcm`` files of
a folder are grouped by the slide OpenSlide assembles from each of them (its
quickhash). Formats OpenSlide cannot read (QPTIFF, CZI, iSyntax) are still listed,
so the scan reports them instead of silently passing them by.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import PathviewError

#: Suffixes taken as slides when no --include glob is given.
SLIDE_SUFFIXES = frozenset({
    ".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif", ".dcm",
    ".qptiff", ".czi", ".isyntax",
})


class ScanInputError(PathviewError):
    """An input path or option of a scan is unusable."""


class ShardSpecError(ScanInputError):
    """``--shard`` is not of the form I/N with 1 <= I <= N."""

    def __init__(self, text: str) -> None:
        super().__init__(f"--shard must look like 3/10 (shard 3 of 10, counting from 1), got {text!r}")


@dataclass(frozen=True, order=True)
class SlideSource:
    """One slide to scan: ``path`` is a file, or a folder holding one DICOM series."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def discover_slides(inputs: Sequence[str | os.PathLike], *, recursive: bool = False,
                    include: Sequence[str] = (), exclude: Iterable[Path] = ()) -> list[SlideSource]:
    """Return the slides under ``inputs``, sorted by path and without duplicates.

    Files named on the command line are always taken; files found in folders only
    when they match ``include`` (globs on the file name) or, without globs, have a
    slide suffix. Folders under ``exclude`` (the output folder) are never entered.
    """
    skip = {Path(p).resolve() for p in exclude}
    files: set[Path] = set()
    for raw in inputs:
        p = Path(raw).expanduser()
        if not p.exists():
            raise ScanInputError(f"input '{raw}' does not exist")
        p = Path(os.path.abspath(p))  # absolute, but a link keeps its name, as in a folder walk
        if p.is_file():
            files.add(p)
        else:
            files.update(_walk(p, recursive, include, skip))
    return sorted(_group(files))


def _walk(root: Path, recursive: bool, include: Sequence[str], skip: set[Path]) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() not in skip)
        if not recursive:
            dirnames[:] = []
        for name in filenames:
            if not name.startswith(".") and _wanted(name, include):
                yield here / name


def _wanted(name: str, include: Sequence[str]) -> bool:
    if include:
        return any(fnmatch.fnmatch(name, g) for g in include)
    return Path(name).suffix.lower() in SLIDE_SUFFIXES


def _group(files: set[Path]) -> Iterable[SlideSource]:
    """Yield one source per non-DICOM file and one per DICOM series of each folder."""
    dicom: dict[Path, list[Path]] = {}
    for f in files:
        if f.suffix.lower() == ".dcm":
            dicom.setdefault(f.parent, []).append(f)
        else:
            yield SlideSource(f)
    for folder, members in dicom.items():
        yield from _dicom_series(folder, sorted(members))


def _dicom_series(folder: Path, members: list[Path]) -> Iterable[SlideSource]:
    """Group a folder's ``.dcm`` files by the slide each opens; the folder itself when it is one slide."""
    import openslide

    series: dict[str, list[Path]] = {}
    for f in members:
        try:
            with openslide.OpenSlide(f) as s:
                key = s.properties.get(openslide.PROPERTY_NAME_QUICKHASH1) or str(f)
        except Exception:  # unreadable alone: listed on its own, the scan records why
            key = str(f)
        series.setdefault(key, []).append(f)
    all_dcm = set(folder.glob("*.dcm"))
    for group in series.values():
        if len(series) == 1 and len(group) > 1 and set(group) == all_dcm:
            yield SlideSource(folder)
        else:
            yield SlideSource(max(group, key=lambda p: (p.stat().st_size, str(p))))


def parse_shard(text: str) -> tuple[int, int]:
    """Return (index, count) from ``I/N`` (1-based), raising :class:`ShardSpecError`."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ShardSpecError(text) from None
    if not (n >= 1 and 1 <= i <= n):
        raise ShardSpecError(text)
    return i, n


def shard(slides: Sequence[SlideSource], index: int, count: int) -> list[SlideSource]:
    """Return shard ``index`` of ``count`` (1-based): every count-th slide of the sorted list.

    Deterministic for a given folder whatever the machine, so SLURM array task I
    always scans the same slides, and together the shards cover each slide once.
    """
    ordered = sorted(slides)
    return ordered[index - 1::count]
