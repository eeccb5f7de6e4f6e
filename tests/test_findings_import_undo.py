"""An import is one undoable step: in the history with the real SQLite store, and with Ctrl+Z in the real window."""

from __future__ import annotations

import pytest
from conftest import ANNOTATIONS, CMU_SVS
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from test_app_annotations import drag, make_window, stored, workspace  # noqa: F401 - the window fixtures

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


def test_ctrl_z_in_the_window_undoes_an_import_in_one_step(make_window, qtbot, workspace):  # noqa: F811
    win, view = make_window()
    ctl = win.annotations.controller
    ctl.set_tool("rectangle")
    drag(qtbot, view, (200, 200), (300, 260))
    (drawn,) = stored(workspace, view)
    win.annotations.import_files([str(p) for p in FILES])
    qtbot.waitUntil(lambda: ctl.history.undo_label == "import of 5 annotations" and len(ctl.scene) == 6,
                    timeout=10000)
    assert win.statusBar().currentMessage() == "Imported 5 annotations (Ctrl+Z undoes the import)."
    box = QApplication.activeModalWidget()  # these files are not this slide's: a warning to read first
    assert box.text().startswith("Imported 5 annotations.")
    box.close()
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win)  # Ctrl+Z is the window's shortcut
    imported = [a.id for a in stored(workspace, view)][1:]
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [a.id for a in stored(workspace, view)] == [drawn.id]
    assert win.statusBar().currentMessage() == "Undid import of 5 annotations."
    qtbot.waitUntil(lambda: len(ctl.scene) == 1)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert [a.id for a in stored(workspace, view)] == [drawn.id, *imported]
    qtbot.waitUntil(lambda: len(ctl.scene) == 6)
