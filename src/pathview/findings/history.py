"""Undo and redo of annotation edits, applied through the store (so every step is saved at once).

The viewer records each edit here instead of calling the store directly and gets
undo/redo for free; there is no small cap (QuPath's stops at 10,000 objects): a
step holds only the annotations it touched. An undo or redo never overwrites a change made
since by someone else (another view of the slide, another window or process): it is refused whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import AnnotationChangedError, AnnotationNotFoundError
from .model import Annotation, AnnotationClass
from .store import FindingsStore


@dataclass(frozen=True)
class Step:
    """One undoable edit: annotations added, removed, and (before, after) pairs updated; classes the edit
    created (an import's), taken back with it while no annotation uses them."""

    label: str
    added: tuple[Annotation, ...] = ()
    removed: tuple[Annotation, ...] = ()
    updated: tuple[tuple[Annotation, Annotation], ...] = ()
    classes_added: tuple[AnnotationClass, ...] = ()


class History:
    """Undo/redo stacks for one slide's annotations in ``store``."""

    def __init__(self, store: FindingsStore, quickhash: str, limit: int | None = None) -> None:
        self.store = store
        self.quickhash = quickhash
        self.limit = limit  # steps kept; None: no limit
        self._undo: list[Step] = []
        self._redo: list[Step] = []

    # -- recorded edits -----------------------------------------------------------------------
    def add(self, annotation: Annotation) -> Annotation:
        """Save a new annotation and record the step."""
        self.add_many([annotation], label=f"add {annotation.kind}")
        return annotation

    def add_many(self, annotations: Sequence[Annotation], label: str = "add") -> None:
        """Save several annotations in one transaction, undone as one step (e.g. paste)."""
        self.store.add_many(self.quickhash, annotations)
        self._record(Step(label, added=tuple(annotations)))

    def record_added(self, annotations: Sequence[Annotation], label: str = "import",
                     classes: Sequence[AnnotationClass] = ()) -> None:
        """Record annotations saved elsewhere (an import, stored in one transaction off the GUI thread)
        as one step, so that undo removes them all, with the ``classes`` the import created, and redo
        brings them back."""
        if annotations:
            self._record(Step(label, added=tuple(annotations), classes_added=tuple(classes)))

    def update(self, annotation: Annotation, label: str = "edit") -> Annotation:
        """Replace the stored annotation with the same id and record the step."""
        self.update_many([annotation], label)
        return annotation

    def update_many(self, annotations: Sequence[Annotation], label: str = "edit") -> None:
        """Replace several stored annotations, undone as one step (e.g. moving a selection)."""
        before = self.store.update_many(self.quickhash, annotations)  # one transaction: all or none
        self._record(Step(label, updated=tuple(zip(before, annotations))))

    def remove(self, annotation_ids: Sequence[str], label: str = "delete") -> list[Annotation]:
        """Delete annotations in one transaction, undone as one step; return them."""
        removed = self.store.remove_many(self.quickhash, annotation_ids)
        self._record(Step(label, removed=tuple(removed)))
        return removed

    def _record(self, step: Step) -> None:
        self._undo.append(step)
        self._redo.clear()
        if self.limit is not None and len(self._undo) > self.limit:
            del self._undo[0]

    # -- undo / redo --------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_label(self) -> str | None:
        return self._undo[-1].label if self._undo else None

    @property
    def redo_label(self) -> str | None:
        return self._redo[-1].label if self._redo else None

    def undo(self) -> Step | None:
        """Reverse the last step in the store; return it (None when there is nothing to undo)."""
        if not self._undo:
            return None
        step = self._undo[-1]
        self._apply(step, forward=False)  # if the store refuses, the step stays to be tried again
        self._redo.append(self._undo.pop())
        return step

    def redo(self) -> Step | None:
        """Apply the last undone step again; return it (None when there is nothing to redo)."""
        if not self._redo:
            return None
        step = self._redo[-1]
        self._apply(step, forward=True)
        self._undo.append(self._redo.pop())
        return step

    def _apply(self, step: Step, forward: bool) -> None:
        to_add, to_remove = (step.added, step.removed) if forward else (step.removed, step.added)
        with self.store._lock:  # the check and the change, with no other thread's edit between them
            self._check_unchanged(step, forward, to_remove)
            if to_remove:
                self.store.remove_many(self.quickhash, [a.id for a in to_remove])
            if to_add:
                self.store.add_many(self.quickhash, to_add)
            if step.updated:
                self.store.update_many(self.quickhash, [after if forward else before for before, after in step.updated])
            self._apply_classes(step.classes_added, forward)

    def _apply_classes(self, classes: Sequence[AnnotationClass], forward: bool) -> None:
        """Redo: bring back the step's classes that are gone. Undo: remove those still as the step made them
        (not recoloured since) that no annotation of any slide uses."""
        stored = self.store.class_colors()
        for cls in classes:
            if forward and cls.name not in stored:
                self.store.set_class(cls)
            elif not forward and tuple(stored.get(cls.name, ())) == tuple(cls.color) \
                    and not self.store.class_in_use(cls.name):
                self.store.remove_class(cls.name)

    def _check_unchanged(self, step: Step, forward: bool, to_remove: Sequence[Annotation]) -> None:
        """Raise unless every annotation the step changes is stored as this step left it."""
        expected = {a.id: a.modified for a in to_remove}
        expected.update({before.id: (before if forward else after).modified for before, after in step.updated})
        stored = self.store.modified_times(self.quickhash, list(expected))
        for aid, modified in expected.items():
            if aid not in stored:
                raise AnnotationNotFoundError(aid)
            if stored[aid] != modified:
                raise AnnotationChangedError(f"{'redo' if forward else 'undo'} '{step.label}'", aid)

    def clear(self) -> None:
        """Forget every step (e.g. when the slide closes); the store keeps the annotations."""
        self._undo.clear()
        self._redo.clear()
