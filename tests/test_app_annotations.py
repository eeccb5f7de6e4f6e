"""Drawing, editing and listing annotations in the real window, offscreen, on real slides, saved in a real store."""

from __future__ import annotations

import math

import pytest
import shapely
from conftest import ANNOTATIONS, CMU_SVS, TCGA_NO_MPP
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QApplication

from pathview.app.annotation_tools import BRUSH_PX
from pathview.app.findings_panel import CLASS, COLUMNS, LOCK, MEASUREMENT, NOTE
from pathview.app.main_window import MainWindow
from pathview.findings import Annotation, AnnotationClass, FindingsStore, measure, rectangle
from pathview.viewport import Viewport

DS = 2.0  # level-0 px per screen px in these tests


@pytest.fixture
def workspace(tmp_path):
    return tmp_path / "workspace"


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch, workspace):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    made = []

    def make(slide=CMU_SVS):
        win = MainWindow(cache_mb=64, workspace=str(workspace))
        win.resize(1200, 800)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        win.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is win)  # the tool keys are window shortcuts
        view = win.open_path(str(slide))
        w, h = view.slide.dimensions
        view.set_view(Viewport(w / 2, h / 2, DS, view.view.width, view.view.height))
        made.append(win)
        return win, view

    yield make
    for win in made:
        win.close()


def level0(view, x, y):
    return view.view.to_level0(x, y)


def drag(qtbot, view, start, end, button=Qt.MouseButton.LeftButton, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.mousePress(view, button, modifier, QPoint(*start))
    mid = ((start[0] + end[0]) // 2, (start[1] + end[1]) // 2)
    qtbot.mouseMove(view, QPoint(*mid))
    qtbot.mouseMove(view, QPoint(*end))
    qtbot.mouseRelease(view, button, modifier, QPoint(*end))


def stored(workspace, view) -> list[Annotation]:
    """What another process would find in the store now."""
    with FindingsStore.open(workspace) as store:
        return store.annotations(view.slide.quickhash)


def test_each_tool_lands_in_the_store_with_measurements_in_um(make_window, qtbot, workspace):
    win, view = make_window()
    ctl = win.annotations.controller
    mpp = view.slide.mpp
    qtbot.keyClick(view, Qt.Key.Key_R)
    assert ctl.tool_name == "rectangle"
    drag(qtbot, view, (100, 100), (300, 200))
    qtbot.keyClick(view, Qt.Key.Key_E)
    drag(qtbot, view, (400, 100), (600, 300))
    qtbot.keyClick(view, Qt.Key.Key_L)
    drag(qtbot, view, (100, 400), (400, 800 - 400))
    qtbot.keyClick(view, Qt.Key.Key_P)
    for p in [(500, 400), (650, 400), (650, 550)]:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(*p))
    qtbot.mouseDClick(view, Qt.MouseButton.LeftButton, pos=QPoint(500, 550))
    qtbot.keyClick(view, Qt.Key.Key_B)
    drag(qtbot, view, (150, 500), (300, 500))
    qtbot.keyClick(view, Qt.Key.Key_Period)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(700, 100))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(720, 120))

    anns = {a.kind: a for a in stored(workspace, view)}
    assert sorted(anns) == ["brush", "ellipse", "line", "points", "polygon", "rectangle"]
    x0, y0 = level0(view, 100, 100)
    x1, y1 = level0(view, 300, 200)
    assert anns["rectangle"].bounds == pytest.approx((x0, y0, x1, y1), abs=1e-6)
    assert measure(anns["rectangle"], mpp)["Area µm²"] == pytest.approx(200 * DS * 100 * DS * mpp * mpp)
    assert measure(anns["ellipse"], mpp)["Area µm²"] == pytest.approx(math.pi * (100 * DS) ** 2 * mpp * mpp, rel=0.01)
    assert measure(anns["line"], mpp)["Length µm"] == pytest.approx(300 * DS * mpp)
    poly = anns["polygon"].geometry
    assert len(poly.exterior.coords) == 5  # four corners, closed
    assert poly.area == pytest.approx((150 * DS) ** 2)
    brush = anns["brush"].geometry
    assert brush.bounds[3] - brush.bounds[1] == pytest.approx(BRUSH_PX * DS, rel=0.02)
    assert anns["points"].geometry.geom_type == "MultiPoint" and measure(anns["points"], mpp) == {"Points": 2.0}
    assert win.annotations.panel.model.rowCount() == 6
    text = {win.annotations.panel.model.rows[i].kind: win.annotations.panel.model.index(i, MEASUREMENT).data()
            for i in range(6)}
    assert text["line"].endswith("µm") and text["rectangle"].endswith("µm²")


def test_polygon_enter_closes_backspace_and_esc(make_window, qtbot, workspace):
    win, view = make_window()
    ctl = win.annotations.controller
    ctl.set_tool("polygon")
    for p in [(100, 100), (300, 100), (300, 300), (500, 500)]:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(*p))
    qtbot.keyClick(view, Qt.Key.Key_Backspace)  # take the stray last corner back
    qtbot.keyClick(view, Qt.Key.Key_Return)
    (poly,) = stored(workspace, view)
    assert len(poly.geometry.exterior.coords) == 4
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(600, 600))
    qtbot.keyClick(view, Qt.Key.Key_Escape)  # drops the half-drawn polygon, keeps the tool
    assert ctl.tool_name == "polygon" and not ctl.tools["polygon"].busy
    assert [a.id for a in ctl.selected()] == [poly.id]
    qtbot.keyClick(view, Qt.Key.Key_Escape)  # clears the selection
    assert ctl.selected() == [] and ctl.tool_name == "polygon"
    qtbot.keyClick(view, Qt.Key.Key_Escape)  # back to navigation
    assert ctl.tool_name == ""
    assert len(stored(workspace, view)) == 1


def test_no_mpp_slide_measures_in_labelled_pixels(make_window, qtbot, workspace):
    win, view = make_window(TCGA_NO_MPP)
    assert view.slide.mpp is None
    win.annotations.controller.set_tool("line")
    drag(qtbot, view, (100, 100), (100, 400))
    (line,) = stored(workspace, view)
    assert measure(line, None) == {"Length px": pytest.approx(300 * DS)}
    panel = win.annotations.panel
    assert panel.model.index(0, MEASUREMENT).data() == f"{300 * DS:.1f} px"
    assert "pixels" in panel.count_label.text()


def test_select_move_reshape_delete_undo_redo_and_lock(make_window, qtbot, workspace):
    win, view = make_window()
    ctl = win.annotations.controller
    ctl.set_tool("rectangle")
    drag(qtbot, view, (200, 200), (400, 300))
    drag(qtbot, view, (600, 200), (700, 300))
    first, second = stored(workspace, view)
    qtbot.keyClick(view, Qt.Key.Key_S)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(300, 250))
    assert [a.id for a in ctl.selected()] == [first.id]
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, QPoint(650, 250))
    assert {a.id for a in ctl.selected()} == {first.id, second.id}
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(300, 250))  # plain click: just this one

    drag(qtbot, view, (300, 250), (350, 280))  # move
    moved = {a.id: a for a in stored(workspace, view)}[first.id]
    assert moved.bounds == pytest.approx(tuple(b + d for b, d in zip(first.bounds, (100, 60, 100, 60))))
    drag(qtbot, view, (450, 330), (500, 400))  # the bottom-right handle: resize
    resized = {a.id: a for a in stored(workspace, view)}[first.id]
    assert resized.kind == "rectangle"
    assert resized.bounds == pytest.approx((moved.bounds[0], moved.bounds[1], moved.bounds[2] + 100, moved.bounds[3] + 140))

    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert [a.id for a in stored(workspace, view)] == [second.id]
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert {a.id: a for a in stored(workspace, view)}[first.id].bounds == pytest.approx(resized.bounds)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the resize
    assert {a.id: a for a in stored(workspace, view)}[first.id].bounds == pytest.approx(moved.bounds)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert {a.id: a for a in stored(workspace, view)}[first.id].bounds == pytest.approx(resized.bounds)
    qtbot.keyClick(view, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)  # redo the delete
    assert [a.id for a in stored(workspace, view)] == [second.id]

    # Lock the second one in the panel: it then refuses to move and to be deleted.
    model = win.annotations.panel.model
    row = model.row_of[second.id]
    assert model.setData(model.index(row, LOCK), Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)
    assert stored(workspace, view)[0].locked
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(650, 250))
    drag(qtbot, view, (650, 250), (700, 300))
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    (kept,) = stored(workspace, view)
    assert kept.bounds == pytest.approx(second.bounds) and kept.locked
    assert "locked" in win.statusBar().currentMessage()


def test_select_tool_rubber_band_selects_what_it_touches_and_shift_adds(make_window, qtbot, workspace):
    win, view = make_window()
    ctl = win.annotations.controller
    box = ctl.create("rectangle", rectangle(*level0(view, 200, 200), *level0(view, 300, 300)))
    line = ctl.create("line", shapely.LineString([level0(view, 500, 200), level0(view, 600, 250)]))
    dot = ctl.create("point", shapely.Point(level0(view, 900, 600)))
    round_ = ctl.create("ellipse", shapely.Point(level0(view, 700, 500)).buffer(100 * DS))
    ctl.select([])
    qtbot.keyClick(view, Qt.Key.Key_S)
    centre = (view.view.cx, view.view.cy)

    drag(qtbot, view, (150, 150), (550, 260))  # holds the rectangle, crosses the line's first half
    assert {a.id for a in ctl.selected()} == {box.id, line.id}
    assert (view.view.cx, view.view.cy) == centre  # the band selected; it did not pan
    assert len(win.annotations.panel.table.selectionModel().selectedRows()) == 2  # the Findings dock follows
    assert win.statusBar().currentMessage() == "Selected 2 annotations."

    drag(qtbot, view, (850, 550), (950, 650), modifier=Qt.KeyboardModifier.ShiftModifier)
    assert {a.id for a in ctl.selected()} == {box.id, line.id, dot.id}

    drag(qtbot, view, (600, 400), (620, 420))  # inside the ellipse's bounding box, outside the ellipse
    assert ctl.selected() == []
    drag(qtbot, view, (830, 480), (790, 520))  # from outside, leftwards over its right edge
    assert [a.id for a in ctl.selected()] == [round_.id]
    assert win.statusBar().currentMessage() == "Selected 1 annotation."
    assert {a.id: a.bounds for a in stored(workspace, view)} == {a.id: a.bounds for a in (box, line, dot, round_)}


def test_brush_adds_to_and_takes_from_the_selected_area(make_window, qtbot, workspace):
    win, view = make_window()
    ctl = win.annotations.controller
    ctl.set_tool("rectangle")
    drag(qtbot, view, (200, 200), (400, 400))  # selected once drawn
    (rect,) = stored(workspace, view)
    ctl.set_tool("brush")
    drag(qtbot, view, (300, 300), (500, 300))  # starts inside: adds
    (grown,) = stored(workspace, view)
    assert grown.id == rect.id and grown.kind == "polygon"
    assert grown.geometry.area > rect.geometry.area and grown.bounds[2] > rect.bounds[2]
    drag(qtbot, view, (300, 150), (300, 450), button=Qt.MouseButton.RightButton)  # right-drag: takes away
    (cut,) = stored(workspace, view)
    assert cut.geometry.geom_type == "MultiPolygon" and cut.geometry.area < grown.geometry.area
    ctl.select([])
    drag(qtbot, view, (600, 600), (650, 650))  # nothing selected: a new brush stroke
    assert sorted(a.kind for a in stored(workspace, view)) == ["brush", "polygon"]


def test_space_drag_and_middle_drag_pan_while_a_tool_is_active(make_window, qtbot, workspace):
    win, view = make_window()
    win.annotations.controller.set_tool("rectangle")
    before = view.view.cx
    drag(qtbot, view, (400, 300), (300, 300), button=Qt.MouseButton.MiddleButton)
    assert view.view.cx == pytest.approx(before + 100 * DS)
    qtbot.keyPress(view, Qt.Key.Key_Space)
    drag(qtbot, view, (400, 300), (300, 300))
    qtbot.keyRelease(view, Qt.Key.Key_Space)
    assert view.view.cx == pytest.approx(before + 200 * DS)
    assert stored(workspace, view) == []  # panning drew nothing


def test_class_list_changes_reach_the_panel_tool_bar_and_layer(make_window, qtbot):
    win, view = make_window()
    ctl = win.annotations.controller
    ctl.store.set_class(AnnotationClass("Mitosis", (255, 0, 255)))
    assert win.annotations.panel.filter_box.findData("Mitosis") >= 0
    box = win.annotations.class_box
    box.setCurrentIndex(box.findData("Mitosis"))
    ctl.set_tool("rectangle")
    drag(qtbot, view, (200, 200), (300, 300))
    (ann,) = list(ctl.scene)
    assert ann.class_name == "Mitosis" and ctl.layer.class_colors["Mitosis"] == (255, 0, 255)
    ctl.store.rename_class("Mitosis", "Mitotic figure")
    qtbot.waitUntil(lambda: ctl.scene.get(ann.id).class_name == "Mitotic figure")
    assert win.annotations.panel.model.index(0, CLASS).data() == "Mitotic figure"
    assert win.annotations.panel.filter_box.findData("Mitotic figure") >= 0


def test_polygon_vertex_drag_reshapes_and_stays_valid(make_window, qtbot, workspace):
    win, view = make_window()
    ctl = win.annotations.controller
    corners = [level0(view, *p) for p in [(200, 200), (400, 200), (400, 400), (200, 400)]]
    ann = ctl.create("polygon", shapely.Polygon(corners))
    ctl.set_tool("select")
    drag(qtbot, view, (400, 400), (500, 450))  # the third corner's handle
    (edited,) = stored(workspace, view)
    assert edited.id == ann.id and edited.geometry.is_valid
    assert edited.bounds[2:] == pytest.approx(level0(view, 500, 450))
    drag(qtbot, view, (200, 200), (450, 300))  # dragged across the opposite edge: repaired, not self-crossing
    (crossed,) = stored(workspace, view)
    assert crossed.geometry.is_valid and crossed.geometry.area > 0


def test_a_hides_and_shows_annotations(make_window, qtbot):
    win, view = make_window()
    ctl = win.annotations.controller
    ctl.set_tool("rectangle")
    drag(qtbot, view, (200, 200), (400, 400))
    ctl.select([])
    ctl.set_tool(None)

    def pixel():  # once the slide's tiles and the annotation tiles are all drawn (both may come a frame late)
        qtbot.waitUntil(lambda: view.is_complete() and view.loader.idle(), timeout=20000)
        view.repaint()
        for _ in range(20):
            if not ctl.layer.pending:
                break
            view.repaint()
        return view.grab().toImage().pixelColor(300, 300).getRgb()

    shown = pixel()
    qtbot.keyClick(view, Qt.Key.Key_A)
    assert not ctl.layer.visible
    hidden = pixel()
    qtbot.keyClick(view, Qt.Key.Key_A)
    assert ctl.layer.visible and pixel() == shown
    assert shown != hidden  # the translucent class colour lies over the tissue


def test_panel_filter_edit_and_click_to_navigate(make_window, qtbot, workspace):
    win, view = make_window()
    ctl = win.annotations.controller
    qh = view.slide.quickhash
    tumour = Annotation(rectangle(100, 100, 300, 200), kind="rectangle", class_name="Tumor", name="T1")
    stroma = Annotation(rectangle(1500, 2000, 1600, 2100), kind="rectangle", class_name="Stroma")
    ctl.store.add_many(qh, [tumour, stroma])  # as an import would: the panel follows the store
    panel = win.annotations.panel
    assert panel.model.rowCount() == 2
    panel.set_class_filter("Stroma")
    assert [a.id for a in panel.model.rows] == [stroma.id]
    panel.set_class_filter(None)
    assert panel.model.rowCount() == 0
    panel.set_class_filter("\x00all")

    row = panel.model.row_of[stroma.id]
    rect = panel.table.visualRect(panel.model.index(row, 1))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert [a.id for a in ctl.selected()] == [stroma.id]
    assert (view.view.cx, view.view.cy) == pytest.approx((1550, 2050))
    assert view.view.downsample < DS  # zoomed in to fit the small finding

    if win.assistant.isVisible():  # one selected annotation is the assistant's region
        assert win.assistant.region == (1500, 2000, 100, 100)
    ctl.select([tumour.id, stroma.id])  # the view's selection shows in the table
    assert len(panel.table.selectionModel().selectedRows()) == 2

    model = panel.model
    model.setData(model.index(model.row_of[tumour.id], NOTE), "invasive front")
    model.setData(model.index(model.row_of[tumour.id], CLASS), "Necrosis")
    saved = {a.id: a for a in stored(workspace, view)}[tumour.id]
    assert (saved.note, saved.class_name) == ("invasive front", "Necrosis")
    assert model.index(model.row_of[tumour.id], COLUMNS.index("Class")).data() == "Necrosis"
    ctl.undo()
    assert {a.id: a for a in stored(workspace, view)}[tumour.id].class_name == "Tumor"


def test_imported_text_and_error_messages_are_never_shown_as_html(make_window, qtbot):
    win, view = make_window()
    html = '<img src="x.png"><b>Tumor</b> & margin'  # e.g. from an imported GeoJSON
    a = Annotation(rectangle(100, 100, 300, 200), kind="rectangle", class_name=html, note=html)
    win.annotations.controller.store.add(view.slide.quickhash, a)
    model = win.annotations.panel.model
    tip = model.index(model.row_of[a.id], NOTE).data(Qt.ItemDataRole.ToolTipRole)
    doc = QTextDocument()
    doc.setHtml(tip)  # Qt renders a tooltip that looks like HTML as HTML
    assert doc.toPlainText() == html
    win.assistant.set_region((100, 100, 200, 100), a.id, classification=html)
    assert win.assistant.region_label.textFormat() == Qt.TextFormat.PlainText
    box = win.show_error("Import failed: nothing was added", f"cannot import 'x.geojson': feature 1 ('{html}')")
    assert box.textFormat() == Qt.TextFormat.PlainText
    box.close()


def test_reopening_the_slide_shows_saved_annotations_and_import_export(make_window, qtbot, workspace, tmp_path):
    win, view = make_window()
    win.annotations.controller.set_tool("ellipse")
    drag(qtbot, view, (200, 200), (300, 260))
    win.annotations.import_files([str(ANNOTATIONS / "qupath" / "qupath-polygon.json")])
    qtbot.waitUntil(lambda: len(win.annotations.controller.scene) == 2, timeout=10000)
    out = tmp_path / "out.geojson"
    win.annotations.export(str(out), "geojson")
    qtbot.waitUntil(out.exists, timeout=10000)
    assert out.read_text().count('"Feature"') == 2
    win.close()

    win2, view2 = make_window()
    kinds = sorted(a.kind for a in win2.annotations.controller.scene)
    assert kinds == ["ellipse", "polygon"]
    assert win2.annotations.panel.model.rowCount() == 2


def test_frame_time_stays_bounded_with_many_polygons(make_window, qtbot):
    win, view = make_window()
    ctl = win.annotations.controller
    w, h = view.slide.dimensions
    cells = [Annotation(shapely.Point(x, y).buffer(5, quad_segs=6), kind="polygon", class_name="Tumor",
                        object_type="detection")
             for x in range(10, w - 10, 20) for y in range(10, h - 10, 20)]
    ctl.store.add_many(view.slide.quickhash, cells)  # over BULK: the scene reloads off the GUI thread
    qtbot.waitUntil(lambda: len(ctl.scene) == len(cells), timeout=20000)
    layer = ctl.layer
    times = []
    import time

    for step in range(12):
        view.set_view(view.view.panned(37, 23))
        start = time.perf_counter()
        view.repaint()
        times.append(time.perf_counter() - start)
    assert len(cells) > 15000
    assert sorted(times)[-2] < 0.25  # a frame renders only what its budget allows
    qtbot.waitUntil(lambda: (view.repaint(), not layer.pending)[1], timeout=20000)
    QApplication.processEvents()


IMPORT_FILES = [ANNOTATIONS / "qupath" / "qupath-polygon-cell-classified.json", ANNOTATIONS / "asap" / "asap-polygon.xml"]


def test_ctrl_z_in_the_window_undoes_an_import_in_one_step(make_window, qtbot, workspace):
    win, view = make_window()
    ctl = win.annotations.controller
    ctl.set_tool("rectangle")
    drag(qtbot, view, (200, 200), (300, 260))
    (drawn,) = stored(workspace, view)
    win.annotations.import_files([str(p) for p in IMPORT_FILES])
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
