"""Findings core: annotations and AI findings, their store, undo history, interchange and report. No Qt here.

Start at :class:`FindingsStore` (one SQLite file per workspace, keyed by slide quickhash),
:class:`Annotation` (a shapely geometry in level-0 pixels with class, name, note) and
:class:`History` (undo/redo through the store). Interchange (QuPath GeoJSON, ASAP XML,
ImageScope XML, CSV) lives in :mod:`pathview.findings.interchange`, the PDF/HTML report in
:mod:`pathview.findings.report`.
"""

from __future__ import annotations

from .errors import (
    AnnotationChangedError, AnnotationExportError, AnnotationImportError, AnnotationNotFoundError, FindingsError,
)
from .history import History, Step
from .measurements import format_measurement, measure, measure_geometry
from .model import DEFAULT_CLASSES, KINDS, SOURCES, Annotation, AnnotationClass, ellipse, rectangle
from .store import AssistantAnswer, FindingsStore, StoreEvent

__all__ = [
    "DEFAULT_CLASSES", "KINDS", "SOURCES", "Annotation", "AnnotationChangedError", "AnnotationClass",
    "AnnotationExportError", "AnnotationImportError", "AnnotationNotFoundError", "AssistantAnswer", "FindingsError",
    "FindingsStore", "History", "Step", "StoreEvent", "ellipse", "format_measurement", "measure", "measure_geometry",
    "rectangle",
]
