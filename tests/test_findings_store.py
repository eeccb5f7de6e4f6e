"""The findings store on real SQLite: edits saved at once, kill-safe, box queries, classes, answers, undo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import shapely

from pathview.findings import (
    Annotation, AnnotationChangedError, AnnotationClass, AnnotationNotFoundError, AssistantAnswer, FindingsError,
    FindingsStore, History, ellipse, measure, rectangle,
)
from pathview.findings.measurements import format_measurement
from pathview.workspace import Workspace

QH = "slide-quickhash"


def test_store_lives_in_the_workspace_in_wal_mode(tmp_path):
    ws = Workspace.at(tmp_path / "ws")
    with FindingsStore.open(ws) as s:
        s.add(QH, Annotation(rectangle(0, 0, 10, 10), kind="rectangle"))
        assert s.path == ws.findings_db and s.path.is_file()
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_add_get_update_remove_round_trip_every_field(store):
    a = Annotation(shapely.Polygon([(0, 0), (100, 0), (50, 80)]), class_name="Tumor", color=(1, 2, 3), name="n",
                   note="ü note", locked=True, source="assistant", object_type="detection",
                   measurements={"Nucleus area": 12.5, "Odd": float("nan")}, extra={"k": [1, 2]})
    store.add(QH, a)
    got = store.get(QH, a.id)
    assert got.geometry.equals(a.geometry)
    for f in ("kind", "class_name", "color", "name", "note", "locked", "source", "object_type", "extra", "created"):
        assert getattr(got, f) == getattr(a, f), f
    assert got.measurements["Nucleus area"] == 12.5 and got.measurements["Odd"] != got.measurements["Odd"]
    moved = got.with_(geometry=shapely.affinity.translate(got.geometry, 1000, 0), note="moved")
    store.update(QH, moved)
    assert store.get(QH, a.id).note == "moved" and store.get(QH, a.id).modified >= a.modified
    assert store.in_box(QH, 1000, 0, 1010, 10)[0].id == a.id and store.in_box(QH, 0, 0, 10, 10) == []
    assert store.remove(QH, a.id).note == "moved"
    with pytest.raises(AnnotationNotFoundError):
        store.get(QH, a.id)
    with pytest.raises(AnnotationNotFoundError):
        store.update(QH, moved)
    assert store.count(QH) == 0


def test_annotations_are_filed_per_slide(store):
    store.add("a", Annotation(shapely.Point(1, 1), kind="point"))
    store.add("b", Annotation(shapely.Point(1, 1), kind="point", class_name="Tumor"))
    assert store.count("a") == 1 and store.count("b") == 1
    assert store.annotations("b", class_name="Tumor")[0].class_name == "Tumor"
    assert store.annotations("a", class_name="Tumor") == []
    assert dict(store.slides()) == {"a": 1, "b": 1}


def test_an_id_prefix_finds_its_one_annotation_and_refuses_when_shared(store):
    for suffix in ("aaaa", "aabb", "ccdd"):
        store.add(QH, Annotation(shapely.Point(1, 1), kind="point", id=f"01a21da9-{suffix}"))
    assert store.resolve_id(QH, "01a21da9-cc") == "01a21da9-ccdd"
    assert store.resolve_id(QH, "01a21da9-aabb") == "01a21da9-aabb"
    with pytest.raises(FindingsError, match="3 annotations have ids starting with 01a21da9"):
        store.resolve_id(QH, "01a21da9")
    with pytest.raises(AnnotationNotFoundError):
        store.resolve_id(QH, "ffff")


def test_bulk_add_is_all_or_nothing(store):
    first = Annotation(shapely.Point(1, 1), kind="point")
    store.add(QH, first)
    batch = [Annotation(shapely.Point(i, i), kind="point") for i in range(50)] + [first]  # last one: duplicate id
    with pytest.raises(FindingsError, match="same id"):
        store.add_many(QH, batch)
    assert [a.id for a in store.annotations(QH)] == [first.id]
    assert store.ids_in_box(QH, 0, 0, 100, 100) == [first.id]


def test_box_queries_on_100k_annotations_follow_edits_and_other_processes(store, tmp_path):
    anns = [Annotation(shapely.box(i, i, i + 5, i + 5)) for i in range(100_000)]
    store.add_many(QH, anns)
    hits = store.ids_in_box(QH, 50_000, 50_000, 50_100, 50_100)
    assert hits == [a.id for a in anns[49_995:50_101]]
    store.remove_many(QH, [anns[50_000].id])
    store.update(QH, anns[50_001].with_(geometry=shapely.box(0, 0, 1, 1)))
    assert len(store.in_box(QH, 50_000, 50_000, 50_100, 50_100)) == len(hits) - 2
    with FindingsStore(store.path) as other:  # another process's connection
        other.add(QH, Annotation(shapely.box(50_050, 50_050, 50_051, 50_051)))
    assert len(store.ids_in_box(QH, 50_000, 50_000, 50_100, 50_100)) == len(hits) - 1


def test_classes_default_editable_and_renamed_everywhere(store):
    names = [c.name for c in store.classes()]
    assert names == ["Tumor", "Stroma", "Necrosis", "Inflammation", "Artifact", "Other"]
    assert store.class_colors()["Tumor"] == (200, 0, 0)
    store.set_class(AnnotationClass("Mitosis", (255, 0, 255)))
    store.set_class(AnnotationClass("Tumor", (10, 20, 30)))
    a = store.add(QH, Annotation(shapely.Point(0, 0), kind="point", class_name="Tumor"))
    store.rename_class("Tumor", "Carcinoma")
    assert store.get(QH, a.id).class_name == "Carcinoma"
    assert store.class_colors()["Carcinoma"] == (10, 20, 30) and store.classes()[-1].name == "Mitosis"
    with pytest.raises(FindingsError, match="already exists"):
        store.rename_class("Stroma", "Mitosis")
    store.remove_class("Mitosis")
    assert "Mitosis" not in store.class_colors()


def test_assistant_answers_are_kept_with_their_annotation_and_survive_undo(store):
    history = History(store, QH)
    a = history.add(Annotation(rectangle(0, 0, 50, 50), kind="rectangle", source="assistant"))
    store.add_answer(QH, a.id, AssistantAnswer("What is this?", "Looks like stroma.", "tiny-vlm", image_png=b"\x89PNG"))
    with pytest.raises(AnnotationNotFoundError):
        store.add_answer(QH, "no-such-id", AssistantAnswer("q", "a", "m"))
    history.remove([a.id])
    assert store.all_answers(QH) == {}
    history.undo()
    (ans,) = store.answers(QH, a.id)
    assert (ans.answer, ans.model, ans.image_png) == ("Looks like stroma.", "tiny-vlm", b"\x89PNG")
    assert list(store.all_answers(QH)) == [a.id]


def test_events_tell_listeners_what_changed(store):
    events = []
    unsubscribe = store.subscribe(events.append)
    a = store.add(QH, Annotation(shapely.Point(0, 0), kind="point"))
    store.update(QH, a.with_(name="x"))
    store.remove(QH, a.id)
    store.set_class(AnnotationClass("New", (1, 1, 1)))
    unsubscribe()
    store.add(QH, Annotation(shapely.Point(0, 0), kind="point"))
    assert [(e.action, e.ids) for e in events] == [("added", (a.id,)), ("updated", (a.id,)), ("removed", (a.id,)),
                                                   ("classes", ())]


def test_undo_redo_without_a_small_cap(store):
    history = History(store, QH)
    anns = [Annotation(shapely.Point(i, 0), kind="point") for i in range(12_000)]
    history.add_many(anns, label="paste")  # more objects than QuPath's 10,000 undo limit
    a = history.add(Annotation(ellipse(0, 0, 10, 20), kind="ellipse"))
    history.update(a.with_(class_name="Stroma"), label="classify")
    history.remove([anns[0].id, a.id])
    assert store.count(QH) == 11_999
    assert history.undo().label == "delete" and store.get(QH, a.id).class_name == "Stroma"
    assert history.undo().label == "classify" and store.get(QH, a.id).class_name is None
    history.undo()
    history.undo()
    assert store.count(QH) == 0 and not history.can_undo
    history.redo()
    assert store.count(QH) == 12_000
    history.redo()
    history.redo()
    assert store.get(QH, a.id).class_name == "Stroma" and history.redo_label == "delete"
    history.add(Annotation(shapely.Point(5, 5), kind="point"))
    assert not history.can_redo


def test_an_undo_the_store_refuses_stays_on_the_stack(store):
    history = History(store, QH)
    a = history.add(Annotation(shapely.Point(0, 0), kind="point"))
    store.remove(QH, a.id)  # deleted behind the history's back (e.g. another window)
    with pytest.raises(AnnotationNotFoundError):
        history.undo()
    assert history.can_undo and history.undo_label == "add point"


def test_undo_never_overwrites_a_change_made_in_another_view(store):
    view1, view2 = History(store, QH), History(store, QH)  # e.g. one slide side by side
    a = view1.add(Annotation(rectangle(0, 0, 10, 10), kind="rectangle"))
    view1.update(a.with_(geometry=rectangle(100, 100, 110, 110)), "move")
    locked = view2.update(store.get(QH, a.id).with_(locked=True, note="checked"), "lock")
    with pytest.raises(AnnotationChangedError):
        view1.undo()
    assert store.get(QH, a.id) == locked and view1.undo_label == "move"  # kept locked, moved, with its note
    view2.undo()
    view1.undo()  # nothing changed it since: undone as usual
    assert store.get(QH, a.id).bounds == (0, 0, 10, 10)
    view1.redo()
    view2.redo()
    with pytest.raises(AnnotationChangedError):
        view1.undo()  # undoing the add would delete the annotation view 2 locked
    assert store.get(QH, a.id).locked


def test_a_multi_annotation_edit_is_all_or_nothing(store):
    history = History(store, QH)
    a, b = (history.add(Annotation(rectangle(0, 0, w, w), kind="rectangle")) for w in (5, 6))
    store.remove(QH, b.id)  # deleted behind the history's back
    with pytest.raises(AnnotationNotFoundError):
        history.update_many([a.with_(geometry=rectangle(50, 50, 55, 55)), b.with_(name="gone")], "move")
    assert store.get(QH, a.id).bounds == (0, 0, 5, 5) and history.undo_label == "add rectangle"


def test_a_store_another_process_keeps_busy_says_so_and_recovers(store):
    import sqlite3

    store._conn.execute("PRAGMA busy_timeout = 100")  # the store waits 30 s; the test need not
    other = sqlite3.connect(store.path, isolation_level=None)  # e.g. a large import in another process
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(FindingsError, match="cannot be written now.*nothing was changed"):
        store.add(QH, Annotation(shapely.Point(1, 1), kind="point"))
    other.execute("ROLLBACK")
    other.close()
    store.add(QH, Annotation(shapely.Point(2, 2), kind="point"))
    assert store.count(QH) == 1


def test_annotation_rejects_a_kind_that_does_not_fit_its_geometry():
    with pytest.raises(ValueError, match="cannot have"):
        Annotation(shapely.Point(0, 0), kind="polygon")
    with pytest.raises(ValueError, match="unknown annotation kind"):
        Annotation(shapely.Point(0, 0), kind="star")


def test_measurements_in_micrometres_with_mpp_and_labelled_pixels_without():
    box = Annotation(rectangle(0, 0, 200, 100), kind="rectangle")
    assert measure(box, 0.5) == {"Area µm²": 5000.0, "Perimeter µm": 300.0}
    assert measure(box, None) == {"Area px²": 20000.0, "Perimeter px": 600.0}
    line = Annotation(shapely.LineString([(0, 0), (30, 40)]), kind="line")
    assert measure(line, 0.25) == {"Length µm": 12.5} and measure(line, None) == {"Length px": 50.0}
    assert measure(Annotation(shapely.MultiPoint([(0, 0), (1, 1)]), kind="points"), 0.5) == {"Points": 2.0}
    assert format_measurement("Area µm²", 2_500_000.0) == "Area µm²: 2,500,000.0 (2.500 mm²)"


_EDITOR = textwrap.dedent("""
    import sys, time, shapely
    from pathview.findings import Annotation, FindingsStore
    store = FindingsStore(sys.argv[1])
    i = 0
    while True:
        a = store.add("qh", Annotation(shapely.box(i, 0, i + 10, 10), kind="rectangle", name=f"edit {i}"))
        print("added", a.id, flush=True)
        store.update("qh", a.with_(note=f"note {i}"))
        print("updated", a.id, f"note {i}", flush=True)
        i += 1
""")


def test_killing_the_process_loses_no_finished_edit(tmp_path):
    db = tmp_path / "findings.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", _EDITOR, str(db)], stdout=subprocess.PIPE, text=True)
    lines = []
    try:
        while len(lines) < 40:
            line = proc.stdout.readline()
            assert line, "the editing process stopped early"
            lines.append(line.split())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    with FindingsStore(db) as store:
        for words in lines:
            ann = store.get("qh", words[1])  # every reported add is there
            if words[0] == "updated":
                assert ann.note == " ".join(words[2:])
        assert store.count("qh") >= 20
