"""Errors of the findings core: one clear line for a pathologist, nothing lost on error."""

from __future__ import annotations

from pathlib import Path

from ..errors import PathviewError


class FindingsError(PathviewError):
    """Base class of annotation, store and interchange errors."""


class AnnotationNotFoundError(FindingsError):
    """An annotation id that the store does not hold for this slide."""

    def __init__(self, annotation_id: str) -> None:
        self.annotation_id = annotation_id
        super().__init__(f"no annotation with id {annotation_id} on this slide")


class AnnotationChangedError(FindingsError):
    """An undo or redo refused because the annotation was changed since, elsewhere (another view or window)."""

    def __init__(self, label: str, annotation_id: str) -> None:
        self.annotation_id = annotation_id
        super().__init__(f"cannot {label}: annotation {annotation_id} was changed since in another view or "
                         "window; nothing was changed")


class AnnotationImportError(FindingsError):
    """A file that cannot be imported; nothing of it was stored."""

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = Path(path)
        self.cause = cause
        super().__init__(f"cannot import '{self.path.name}': {cause}; no annotation was changed")


class AnnotationExportError(FindingsError):
    """An export that cannot be written."""

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = Path(path)
        self.cause = cause
        super().__init__(f"cannot write '{self.path.name}': {cause}")
