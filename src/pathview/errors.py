"""Typed errors with one clear line for a person.

Every error pathview raises on purpose derives from :class:`PathviewError`; the
CLI prints its message on one line and exits with status 2, the viewer shows it in
a dialog. Each error keeps its context (the path, the region) as attributes.
"""

from __future__ import annotations

from pathlib import Path


class PathviewError(Exception):
    """Base class of the errors pathview reports to the user."""


class SlideError(PathviewError):
    """A problem with one slide file; ``path`` names it."""

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = Path(path)
        self.cause = cause
        super().__init__(f"cannot open '{self.path.name}': {cause}")


class SlideNotFoundError(SlideError):
    """The path does not exist."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, "no such file or folder")


class SlidePermissionError(SlideError):
    """The file exists but this user may not read it."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, "permission denied")


class UnsupportedFormatError(SlideError):
    """The file is not a slide format OpenSlide or pathview can read."""


class CorruptSlideError(SlideError):
    """The file looks like a known slide format but is truncated or damaged."""


class RegionReadError(PathviewError):
    """Pixels of one region could not be decoded (damaged tiles or missing data files)."""

    def __init__(self, path: str | Path, region: tuple[int, int, int, int], level: int, cause: str) -> None:
        self.path = Path(path)
        self.region = region
        self.level = level
        self.cause = cause
        x, y, w, h = region
        super().__init__(
            f"cannot read region x={x} y={y} {w}x{h} at level {level} of '{self.path.name}': {cause}"
        )

    def __reduce__(self):  # rebuilt from its fields when it crosses a process boundary
        return type(self), (self.path, self.region, self.level, self.cause)


class InvalidMppError(PathviewError, ValueError):
    """A pixel size given by the user is not a positive number."""

    def __init__(self, mpp: float) -> None:
        super().__init__(f"a pixel size must be a positive number of µm per pixel (e.g. 0.25 for 40x), got {mpp:g}")


class MissingMppError(PathviewError):
    """A physical size was asked for but the slide records no pixel size."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(
            f"'{self.path.name}' records no pixel size (mpp); give one with --slide-mpp "
            "(e.g. 0.25 for 40x, 0.5 for 20x)"
        )
