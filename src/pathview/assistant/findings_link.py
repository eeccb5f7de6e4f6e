"""Keep an assistant answer as a finding: filed under its annotation, with the picture the model saw.

An answer about a selected annotation is filed under it; an answer about a view or a
drawn box gets a new rectangle annotation named "Assistant region" (source
``assistant``), so the exports and the PDF report carry it with its region. The
findings store marks answers as AI-generated and not a diagnosis in the report.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from .context import Annotation
from .errors import AssistantError
from .session import Turn

if TYPE_CHECKING:
    from ..findings import FindingsStore

REGION_NAME = "Assistant region"


def annotation_context(store: FindingsStore, quickhash: str,
                       annotation_id: str) -> tuple[tuple[int, int, int, int], Annotation]:
    """Return the level-0 box and the class and note of a stored annotation (for asking about it)."""
    ann = store.get(quickhash, store.resolve_id(quickhash, annotation_id))  # a unique prefix will do
    x0, y0, x1, y1 = ann.bounds
    box = (math.floor(x0), math.floor(y0), max(1, math.ceil(x1 - x0)), max(1, math.ceil(y1 - y0)))
    return box, Annotation(ann.id, ann.class_name, ann.note or None)


def save_answer(store: FindingsStore, quickhash: str, turn: Turn) -> str:
    """File ``turn``'s answer as a finding; return the id of the annotation it is filed under."""
    from ..findings import AnnotationNotFoundError, AssistantAnswer, rectangle
    from ..findings import Annotation as StoredAnnotation

    if turn.state not in ("done", "stopped") or not turn.answer.strip():
        raise AssistantError("there is no complete answer to save yet")
    if turn.saved_to is not None:
        return turn.saved_to
    target = str(turn.annotation.id) if turn.annotation is not None and turn.annotation.id is not None else None
    if target is not None:
        try:
            store.get(quickhash, target)
        except AnnotationNotFoundError:  # deleted since the question: keep the answer on its region instead
            target = None
    if target is None:
        x, y, w, h = turn.box
        region = StoredAnnotation(rectangle(x, y, x + w, y + h), kind="rectangle", source="assistant",
                                  name=REGION_NAME)
        target = store.add(quickhash, region).id
    text = turn.answer.strip() + (" [stopped before the end]" if turn.state == "stopped" else "")
    store.add_answer(quickhash, target, AssistantAnswer(
        question=turn.question, answer=text, model=turn.model, created=turn.finished or time.time(),
        image_png=turn.context.images[0].png))
    turn.saved_to = target
    return target
