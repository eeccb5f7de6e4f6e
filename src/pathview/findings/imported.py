"""What a reader returns: the annotations of one file, the classes it named, and warnings."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Annotation, AnnotationClass

#: More objects than this in one import are refused with a clear message (QuPath lags at 150k).
MAX_OBJECTS = 500_000


@dataclass
class ImportResult:
    """Annotations read from one file (not yet stored), classes with the colours the file gave, warnings."""

    annotations: list[Annotation] = field(default_factory=list)
    classes: list[AnnotationClass] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    mpp: float | None = None  # the pixel size the file says it was drawn at, where it says one

    def add_class(self, name: str, color: tuple[int, int, int] | None) -> None:
        """Remember a class the file named (first colour wins)."""
        if color is not None and all(c.name != name for c in self.classes):
            self.classes.append(AnnotationClass(name, color))
