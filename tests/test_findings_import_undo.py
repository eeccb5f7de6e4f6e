"""An import is one undoable step in the history, with the real SQLite store (Ctrl+Z in the window: test_app_annotations)."""

from __future__ import annotations

import json

import pytest
from conftest import ANNOTATIONS, CMU_SVS

from pathview.findings import Annotation, AnnotationChangedError, AnnotationClass, FindingsStore, History, rectangle
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


def mitosis_file(tmp_path, color=(200, 30, 120)):
    path = tmp_path / "mitoses.geojson"
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[10, 10], [60, 10], [60, 60], [10, 10]]]},
               "properties": {"objectType": "annotation",
                              "classification": {"name": "Mitosis", "color": list(color)}}}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return path


def test_undoing_an_import_takes_back_the_classes_it_created_and_redo_restores_them(setting, tmp_path):
    store, info = setting
    history = History(store, info.quickhash)
    report = import_files(store, info, [mitosis_file(tmp_path)])
    assert report.classes_added == [AnnotationClass("Mitosis", (200, 30, 120))]
    history.record_added(report.annotations, "import", report.classes_added)
    assert store.class_colors()["Mitosis"] == (200, 30, 120)
    history.undo()
    assert "Mitosis" not in store.class_colors() and store.count(info.quickhash) == 0
    history.redo()
    assert store.class_colors()["Mitosis"] == (200, 30, 120) and store.count(info.quickhash) == 1


def test_a_created_class_stays_when_another_slide_uses_it_or_it_was_recoloured(setting, tmp_path):
    store, info = setting
    history = History(store, info.quickhash)
    report = import_files(store, info, [mitosis_file(tmp_path)])
    history.record_added(report.annotations, "import", report.classes_added)
    store.add("another-slide", Annotation(rectangle(0, 0, 5, 5), kind="rectangle", class_name="Mitosis"))
    history.undo()
    assert store.count(info.quickhash) == 0 and "Mitosis" in store.class_colors()  # still used elsewhere
    history.redo()
    store.remove_many("another-slide", [a.id for a in store.annotations("another-slide")])
    store.set_class(AnnotationClass("Mitosis", (0, 0, 255)))  # the user made it theirs
    history.undo()
    assert store.class_colors()["Mitosis"] == (0, 0, 255)
