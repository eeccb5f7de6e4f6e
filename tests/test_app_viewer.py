"""The desktop viewer, driven like a user would (real widgets, offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BROKEN, CMU_SVS, TCGA_NO_MPP
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QDockWidget, QMessageBox, QTableWidget
from shapely.geometry import box

from pathview.app.annotation_layer import measurement_text
from pathview.app.findings_panel import COLUMNS
from pathview.app.main_window import MainWindow
from pathview.app.pixel_size_dialog import PixelSizeDialog
from pathview.app.qimage import from_qimage
from pathview.render import compose


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # recent files go to a scratch config
    monkeypatch.setenv("PATHVIEW_WORKSPACE", str(tmp_path / "ws"))  # and annotations, pixel sizes to a scratch one
    win = MainWindow(cache_mb=64)
    win.resize(1100, 750)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def settle(qtbot, view) -> None:
    qtbot.waitUntil(lambda: view.is_complete() and view.loader.idle(), timeout=20000)
    view.repaint()


def blocks(image: np.ndarray, k: int = 4) -> np.ndarray:
    h, w = image.shape[0] // k * k, image.shape[1] // k * k
    return image[:h, :w].reshape(h // k, k, w // k, k, -1).mean(axis=(1, 3))


def screen_pixels(view) -> np.ndarray:
    return from_qimage(view.grab().toImage())


def test_preset_pan_overview_and_pixels_match_the_slide(window, qtbot):
    for dock in window.findChildren(QDockWidget):  # a wide view, as a pathologist keeps it
        dock.setVisible(dock is window.overview_dock)
    view = window.open_path(str(CMU_SVS))
    settle(qtbot, view)
    qtbot.keyClick(view, Qt.Key.Key_4)  # 10x preset
    assert view.magnification == pytest.approx(10, rel=1e-3)
    before = view.view
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.view.cx == pytest.approx(before.cx + before.width * before.downsample * 0.25)
    assert view.view.cy == before.cy

    overview = window.overview_dock.widget()
    rect = overview._image_rect()
    qtbot.mouseClick(overview, Qt.MouseButton.LeftButton, pos=QPoint(int(rect.center().x()), int(rect.center().y())))
    w, h = view.slide.dimensions
    assert view.view.cx == pytest.approx(w / 2, abs=w / rect.width() * 1.5)
    assert view.view.cy == pytest.approx(h / 2, abs=h / rect.height() * 1.5)

    settle(qtbot, view)
    shown = screen_pixels(view).astype(np.int16)
    expected = compose(view.source, view.view).astype(np.int16)
    assert shown.shape == expected.shape
    band = slice(0, shown.shape[0] - 60)  # leave out the scale bar in the bottom-left corner
    assert np.abs(shown[band] - expected[band]).mean() < 5.0  # Qt and Pillow resample slightly differently
    region = view.slide.read_scaled(
        (round(view.view.x0), round(view.view.y0), round(view.view.width * view.view.downsample),
         round(view.view.height * view.view.downsample)), (view.view.width, view.view.height)).astype(np.int16)
    # Resamplers differ pixel by pixel (Qt bilinear, Pillow area); 4x4 block means compare the content.
    assert np.abs(blocks(shown[band]) - blocks(region[band])).mean() < 4.0, "the screen shows the slide's own pixels"


def test_zooming_in_is_never_blank_while_tiles_load(window, qtbot):
    view = window.open_path(str(CMU_SVS))
    settle(qtbot, view)
    view.source.cache.clear()
    view.center_on(1100, 1500)
    view.set_magnification(40)
    shown = screen_pixels(view)  # before any exact tile arrives
    assert view.last_exact_missing > 0, "the exact tiles were not loaded yet"
    white = np.all(shown >= 254, axis=-1).mean()
    assert white < 0.05, "the thumbnail stands in for tiles still loading"


def test_wheel_zoom_keeps_the_point_under_the_cursor(window, qtbot):
    view = window.open_path(str(CMU_SVS))
    settle(qtbot, view)
    anchor = (300.0, 200.0)
    before = view.view.to_level0(*anchor)
    view.zoom(2 ** 0.25, anchor=anchor)
    after = view.view.to_level0(*anchor)
    assert after == pytest.approx(before, abs=1e-6)


def test_wheel_notches_glide_to_their_zoom_about_the_cursor(window, qtbot):
    view = window.open_path(str(CMU_SVS))
    settle(qtbot, view)
    w, h = view.slide.dimensions
    sx, sy = view.view.to_screen(w * 0.4, h * 0.6)  # a point on the slide, not the margin beside it
    pos = QPointF(sx / view.devicePixelRatioF(), sy / view.devicePixelRatioF())
    anchor = view._device(pos)
    before, ds = view.view.to_level0(*anchor), view.view.downsample
    for _ in range(2):  # two notches in quick succession add up
        wheel = QWheelEvent(pos, view.mapToGlobal(pos), QPoint(), QPoint(0, 120), Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(view, wheel)
    assert view.is_gliding()
    qtbot.waitUntil(lambda: not view.is_gliding(), timeout=3000)
    assert view.view.downsample == pytest.approx(ds / 2 ** 0.5, rel=0.02)
    assert view.view.to_level0(*anchor) == pytest.approx(before, abs=0.5)


def test_the_window_fits_a_laptop_screen_with_every_panel_open(window, qtbot):
    window.open_path(str(CMU_SVS))
    window.analysis.heatmap_dock.show()
    qtbot.wait(50)
    assert window.minimumSizeHint().height() <= 720  # tall panels scroll instead of growing the window
    assert window.height() == 750


def test_broken_slide_shows_one_clear_error_and_the_open_slide_stays(window, qtbot):
    view = window.open_path(str(CMU_SVS))
    assert window.open_path(str(BROKEN / "CMU-1-Small-Region-truncated.svs")) is None
    boxes = window.findChildren(QMessageBox)
    assert boxes and "truncated" in boxes[-1].text()
    assert window.views == [view]
    view.zoom(2.0)
    settle(qtbot, view)


def test_side_by_side_views_follow_each_other(window, qtbot):
    left = window.open_path(str(CMU_SVS))
    right = window.open_path(str(CMU_SVS), beside=True)
    assert window.views == [left, right]
    left.set_magnification(20)
    left.center_on(800, 900)
    assert right.view.cx == pytest.approx(800) and right.view.cy == pytest.approx(900)
    assert right.magnification == pytest.approx(20, rel=1e-3)


def test_label_image_is_hidden_until_asked(window):
    window.open_path(str(CMU_SVS))
    panel = window.info_dock.widget().widget()  # the panel inside its scroll area
    assert panel.image_labels["label"].pixmap().isNull()
    assert not panel.image_labels["thumbnail"].pixmap().isNull()


def info_rows(window) -> dict[str, str]:
    table = window.info_dock.widget().widget().findChild(QTableWidget)
    return {table.item(i, 0).text(): table.item(i, 1).text() for i in range(table.rowCount())}


def declare_20x(window, qtbot) -> None:
    """View › Set pixel size…, then 20x and OK, as a user does."""
    window.pixel_size_action.trigger()
    (dialog,) = window.findChildren(PixelSizeDialog)
    qtbot.mouseClick(dialog.presets[1], Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)


def test_a_declared_pixel_size_holds_for_the_slide_and_is_remembered(window, qtbot, tmp_path):
    view = window.open_path(str(TCGA_NO_MPP))
    assert window.pixel_size_action.isEnabled()
    assert "magnification assumes a 40x scan" in window.status_view.text()
    assert view.scale_bar()[1].endswith(" px") and info_rows(window)["mpp"] == "not recorded"
    view.center_on(1500, 1200)
    field = view.view
    before = window.annotations.controller.create("rectangle", box(0, 0, 200, 100))
    model = window.annotations.panel.model

    def measured() -> str:
        return model.data(model.index(model.row_of[before.id], COLUMNS.index("Measurement")))

    assert measured() == "20,000 px²"
    declare_20x(window, qtbot)
    qtbot.waitUntil(lambda: measured() == "5,000 µm²", timeout=5000)  # earlier shapes are measured anew
    view = window.views[0]
    assert view.slide.info.mpp == 0.5 and view.slide.info.mpp_source == "user"
    assert (view.view.cx, view.view.cy, view.view.downsample) == (field.cx, field.cy, field.downsample)
    assert info_rows(window)["mpp"] == "0.5 µm/px (user)"
    view.set_magnification(20)
    dpr = view.devicePixelRatioF()
    assert view.view.downsample == pytest.approx(dpr)  # 20x on a 0.5 µm/px scan is its full resolution
    assert window.status_view.text() == "20x · 0.5 µm/px (user)"
    length_px, label = view.scale_bar()
    assert label.endswith(" µm")
    assert float(label.split()[0]) == pytest.approx(length_px * 0.5)  # one screen pixel is 0.5 µm at 20x
    ctl = window.annotations.controller
    ann = ctl.create("rectangle", box(1000, 1000, 1200, 1100))  # 200 x 100 px
    assert ctl.mpp == 0.5 and measurement_text(ann, ctl.layer.mpp) == "5,000 µm²"

    again = MainWindow(cache_mb=64)  # a new window on the same workspace: no prompt, µm at once
    qtbot.addWidget(again)
    reopened = again.open_path(str(TCGA_NO_MPP))
    assert reopened.slide.info.mpp == 0.5 and reopened.slide.info.mpp_source == "user"
    assert not again.findChildren(PixelSizeDialog)
    again.close()


def test_declaring_a_pixel_size_keeps_the_undo_history_and_the_selection(window, qtbot):
    window.open_path(str(TCGA_NO_MPP))
    ctl = window.annotations.controller
    kept = ctl.create("rectangle", box(0, 0, 200, 100))
    drawn = ctl.create("rectangle", box(1000, 1000, 1200, 1100))
    ctl.select([kept.id])
    declare_20x(window, qtbot)
    view = window.views[0]
    assert view.slide.info.mpp == 0.5 and ctl.view is view and ctl.layer in view.layers
    assert [a.id for a in ctl.selected()] == [kept.id] and ctl.layer.selected == [kept.id]
    assert ctl.layer.mpp == 0.5  # lengths and areas on the slide are drawn in µm now
    ctl.undo()  # the rectangle drawn before the pixel size was declared goes
    stored = {a.id for a in ctl.store.annotations(view.slide.quickhash)}
    assert stored == {kept.id} and drawn.id not in ctl.scene
    ctl.redo()
    assert drawn.id in ctl.scene
    qtbot.keyClick(view, Qt.Key.Key_Escape)  # the new view's keys reach the annotations: Esc clears the selection
    assert ctl.selected() == []


def test_declaring_a_pixel_size_keeps_the_conversation_and_the_answer_being_written(models_env, window, qtbot):
    window.open_path(str(TCGA_NO_MPP))
    panel = window.assistant
    panel.max_new_tokens = 600  # long enough to be still writing when the pixel size is declared
    assert panel.ask("Describe the cells.")
    qtbot.waitUntil(lambda: bool(panel.session.turns and panel.session.turns[0].answer), timeout=60000)
    session, (first,) = panel.session, panel.session.turns
    written = len(first.answer)
    assert panel.worker.busy and first.context.facts["mpp"] is None
    assert window.declare_pixel_size(0.5)
    view = window.views[0]
    assert panel.session is session and panel.view is view and panel.layer in view.layers
    qtbot.waitUntil(lambda: not panel.worker.busy and panel.ask_button.isEnabled(), timeout=60000)  # all shown
    assert first.state == "done" and len(first.answer) > written  # the answer went on to its end, not stopped
    assert panel.turn_widgets[first.id].answer.toPlainText() == first.answer
    panel.max_new_tokens = 3
    assert panel.ask("And the nuclei?")
    qtbot.waitUntil(lambda: not panel.worker.busy and panel.ask_button.isEnabled(), timeout=60000)  # all shown
    assert panel.session is session and [t.id for t in session.turns] == [first.id, session.turns[1].id]
    assert session.turns[1].context.facts["mpp"] == 0.5  # the follow-up reads the slide with its pixel size
    assert list(panel.turn_widgets) == [first.id, session.turns[1].id]


def test_a_slide_that_records_its_pixel_size_is_not_asked_for_one(window):
    assert not window.pixel_size_action.isEnabled()  # nothing open yet
    window.open_path(str(CMU_SVS))
    assert not window.pixel_size_action.isEnabled()
    assert info_rows(window)["mpp"] == "0.499 µm/px (slide)"


def test_the_cursor_readout_does_not_outlive_its_slide(window, qtbot):
    view = window.open_path(str(CMU_SVS))
    settle(qtbot, view)
    qtbot.mouseMove(view, QPoint(200, 150))
    assert "µm" in window.status_position.text()
    view = window.open_path(str(TCGA_NO_MPP))
    assert window.status_position.text() == ""
    qtbot.mouseMove(view, QPoint(210, 160))
    text = window.status_position.text()
    assert text.startswith("x ") and "µm" not in text
