"""An import is one undoable step in the history, with the real SQLite store (Ctrl+Z in the window: test_app_annotations)."""

from __future__ import annotations

import pytest
from conftest import ANNOTATIONS, CMU_SVS

from pathview.findings import Annotation, AnnotationChangedError, FindingsStore, History, rectangle
from pathview.findings.interchange import import_files
from pathview.slide import open_slide

FILES = [ANNOTATIONS / "qupath" / "qupath-polygon-cell-classified.json", ANNOTATIONS / "asap" / "asap-polygon.xml"]


@pytest.fixture
def setting(tmp_path):
    with open_slide(CMU_SVS) as slide, FindingsStore.open(tmp_path / "ws") as store:
        yield store, slide.info


def test_undo_removes_the_whole_import_and_redo_brings_it_back(setting):
    store, info = setting
    history = History(store, info.quickhash)
    drawn = history.add(Annotation(rectangle(0, 0, 50, 50), kind="rectangle"))
    report = import_files(store, info, FILES)
    history.record_added(report.annotations, "import of 5 annotations")
    imported = [a.id for a in store.annotations(info.quickhash)][1:]
    assert len(imported) == report.count == 5 and history.undo_label == "import of 5 annotations"
    assert history.undo().label == "import of 5 annotations"
    assert [a.id for a in store.annotations(info.quickhash)] == [drawn.id]
    history.redo()
    assert [a.id for a in store.annotations(info.quickhash)] == [drawn.id, *imported]
    history.undo()
    history.undo()  # then the drawing before it
    assert store.count(info.quickhash) == 0


def test_undoing_an_import_never_drops_an_annotation_edited_since_in_another_view(setting):
    store, info = setting
    history, other_view = History(store, info.quickhash), History(store, info.quickhash)
    history.record_added(import_files(store, info, FILES).annotations)
    first = store.annotations(info.quickhash)[0]
    other_view.update(first.with_(note="checked"), "note")
    with pytest.raises(AnnotationChangedError):
        history.undo()
    assert store.count(info.quickhash) == 5 and history.undo_label == "import"  # refused whole, kept to retry
