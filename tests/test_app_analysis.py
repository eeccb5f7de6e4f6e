"""Anomaly analysis in the viewer, driven like a user would: real window offscreen, real slide, real analysis."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TCGA_NO_MPP, cmu_with_ink
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox, QPushButton
from shapely.geometry import box

from pathview.analysis.analyze import ANALYSIS_VERSION, analyze_slide
from pathview.analysis.reference import build_bank
from pathview.app.analysis_result import LAYERS, RegionItem, load_result
from pathview.app.analysis_settings import AnalysisSettingsDialog, load_run
from pathview.app.analysis_staleness import staleness_note
from pathview.app.main_window import MainWindow
from pathview.app.pixel_size_dialog import PixelSizeDialog
from pathview.app.qimage import from_qimage
from pathview.app.regions_panel import RegionsPanel
from pathview.findings import FindingsStore
from pathview.scan import AnalysisConfig, output_name
from pathview.slide import open_slide
from pathview.wording import count
from pathview.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def marked_slide(tmp_path_factory) -> Path:
    """CMU-1-Small-Region with two pen strokes painted in at known places: regions the analysis must find."""
    return cmu_with_ink(tmp_path_factory.mktemp("slide") / "CMU-marked.svs",
                        [((100, 2300, 1000, 260), "green"), ((1300, 300, 800, 220), "blue")], seed=1)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, marked_slide):
    """The marked slide analysed once, headless, named as `pathview scan -o OUT` names a slide's folder."""
    with open_slide(marked_slide) as slide:
        out = tmp_path_factory.mktemp("scan") / output_name(marked_slide, slide.quickhash)
    summary = analyze_slide(marked_slide, out, device="cpu")
    assert summary["regions"] >= 2 and summary["top_regions"][0]["class"] == "pen"
    return out


@pytest.fixture
def workspace(tmp_path, monkeypatch, user_settings):
    monkeypatch.setenv("PATHVIEW_WORKSPACE", str(tmp_path / "ws"))
    return Workspace.at(tmp_path / "ws")


@pytest.fixture
def user_settings(tmp_path, monkeypatch):
    """A fresh scratch folder for the viewer's QSettings (recent files, analysis settings), never the user's own.

    Qt reads $XDG_CONFIG_HOME once per process (set here in case this is the first read), so each
    test's folder is set with ``QSettings.setPath``, then the earlier one is put back.
    """
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    fmt, scope = QSettings.Format.NativeFormat, QSettings.Scope.UserScope
    before = Path(QSettings(fmt, scope, "pathview", "pathview").fileName()).parent.parent
    QSettings.setPath(fmt, scope, str(tmp_path / "config"))
    yield tmp_path / "config"
    QSettings.setPath(fmt, scope, str(before))


def make_window(qtbot) -> MainWindow:
    win = MainWindow(cache_mb=64)
    win.resize(1300, 850)
    qtbot.addWidget(win)
    win.show()
    return win


@pytest.fixture
def window(qtbot, workspace):
    win = make_window(qtbot)
    yield win
    win.close()


def settle(qtbot, view) -> None:
    qtbot.waitUntil(lambda: view.is_complete() and view.loader.idle(), timeout=20000)
    view.repaint()


def pixels(view) -> np.ndarray:
    return from_qimage(view.grab().toImage()).astype(np.int16)


def test_background_analysis_keeps_the_window_responsive_and_shows_the_results(window, qtbot, workspace, marked_slide):
    view = window.open_path(str(marked_slide))
    ctl = window.analysis
    assert ctl.result is None and "No analysis" in ctl.regions_panel.header.text()
    settle(qtbot, view)  # the slide's own first tiles are not the analysis' doing
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    ctl.analyse_action.trigger()
    assert ctl.worker.busy and ctl.progress.active
    qtbot.waitUntil(lambda: not ctl.worker.busy and ctl.result is not None, timeout=90000)
    timer.stop()
    assert len(gaps) > 50, "the event loop must keep ticking while the analysis runs"
    longest, second = sorted(gaps, reverse=True)[:2]  # one late tick may be the OS scheduler, not us
    assert second < 0.1 and longest < 0.25, f"the window stalled for {longest * 1000:.0f} ms"
    assert not ctl.progress.active and ctl.analyse_action.isEnabled()
    out = workspace.analysis_dir(view.slide.quickhash)
    assert (out / "summary.json").is_file()
    assert ctl.result.folder == out and len(ctl.result.coords) == ctl.result.summary["tiles"]
    assert ctl.regions_panel.list.count() == len(ctl.result.regions) >= 1
    assert ctl.heatmap.pixels is not None and (ctl.heatmap.pixels[..., 3] > 0).any()


def test_cancel_stops_the_analysis_and_leaves_nothing_finished(window, qtbot, workspace, marked_slide):
    view = window.open_path(str(marked_slide))
    ctl = window.analysis
    finished: list[str] = []
    ctl.worker.finished.connect(lambda qh, folder: finished.append(folder))
    assert ctl.analyse()
    qtbot.waitUntil(lambda: ctl.progress.bar.maximum() > 0, timeout=60000)  # encoding has started
    qtbot.mouseClick(ctl.progress.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not ctl.worker.busy, timeout=30000)
    qtbot.waitUntil(lambda: "cancelled" in window.statusBar().currentMessage(), timeout=5000)  # the queued signal
    assert not finished
    assert not (workspace.analysis_dir(view.slide.quickhash) / "summary.json").exists()
    assert ctl.result is None and not ctl.progress.active
    assert "cancelled" in window.statusBar().currentMessage()


def test_overlay_draws_over_high_scores_and_follows_its_settings(window, qtbot, analysed, marked_slide):
    ctl = window.analysis
    ctl.add_scan_dir(analysed.parent)  # a `pathview scan -o` folder holding the slide's outputs
    view = window.open_path(str(marked_slide))
    assert ctl.result is not None and ctl.result.folder == analysed
    result = ctl.result
    best = np.max(np.stack([result.scores[n] for n in LAYERS], 1), 1)
    x, y = result.coords[int(best.argmax())]
    ps = result.patch_size_level0
    view.center_on(x + ps / 2, y + ps / 2)
    settle(qtbot, view)
    shown = pixels(view)
    qtbot.keyClick(view, Qt.Key.Key_H)
    assert not ctl.heatmap.visible and not ctl.heatmap_panel.show_box.isChecked()
    view.repaint()
    hidden = pixels(view)
    cy, cx = shown.shape[0] // 2, shown.shape[1] // 2
    half = max(2, int(ps / view.view.downsample / 2) - 2)  # the top tile's square on screen, less its edge
    tile = (slice(cy - half, cy + half), slice(cx - half, cx + half))
    assert np.abs(shown[tile] - hidden[tile]).mean() > 10
    qtbot.keyClick(view, Qt.Key.Key_H)
    assert ctl.heatmap.visible

    panel = ctl.heatmap_panel
    panel.threshold.setValue(0)
    everything = ctl.heatmap.pixels.copy()
    assert (everything[..., 3] > 0).sum() == len(result.coords)  # one lattice pixel per analysed tile
    panel.layer_boxes["outlier"].setChecked(False)
    assert not np.array_equal(ctl.heatmap.pixels, everything)
    panel.layer_boxes["outlier"].setChecked(True)
    panel.threshold.setValue(90)
    assert (ctl.heatmap.pixels[..., 3] > 0).sum() == int((best >= 0.9).sum()) < len(result.coords)
    panel.cmap.setCurrentText("viridis")
    assert ctl.heatmap.settings.cmap == "viridis"


def test_regions_navigate_accept_and_dismiss(window, qtbot, workspace, analysed, marked_slide):
    ctl = window.analysis
    ctl.add_scan_dir(analysed)
    view = window.open_path(str(marked_slide))
    qh = view.slide.quickhash
    regions = ctl.result.regions
    # Every thumbnail is read from the slide in the background and arrives in the list.
    qtbot.waitUntil(lambda: set(ctl.regions_panel.thumbnails) == {r.id for r in regions}, timeout=10000)

    qtbot.keyClick(view, Qt.Key.Key_N)
    top = regions[0]
    x0, y0, x1, y1 = top.bbox
    assert view.view.cx == pytest.approx((x0 + x1) / 2) and view.view.cy == pytest.approx((y0 + y1) / 2)
    assert view.view.width * view.view.downsample >= x1 - x0  # the whole region is on screen
    assert ctl.regions_layer.selected == top.id and ctl.regions_panel.current() == top

    qtbot.mouseClick(ctl.regions_panel.accept_button, Qt.MouseButton.LeftButton)
    with FindingsStore.open(workspace) as store:
        anns = store.annotations(qh)
        assert len(anns) == 1
        ann = anns[0]
        assert ann.source == "anomaly" and ann.class_name == top.title
        assert ann.geometry.equals(top.geometry)
        assert top.title in store.class_colors()
    annotations = window.annotations.controller
    qtbot.waitUntil(lambda: ann.id in annotations.scene, timeout=5000)  # drawn and listed with the other findings
    assert [a.id for a in annotations.selected()] == [ann.id]
    assert not ctl.regions_panel.accept_button.isEnabled()  # no second copy of the same finding
    assert "finding" in ctl.regions_panel.list.currentItem().text()
    annotations.undo()  # the accept is one undoable step, like any edit
    qtbot.waitUntil(lambda: ctl.regions_panel.accept_button.isEnabled(), timeout=5000)
    assert ann.id not in annotations.scene
    annotations.redo()
    qtbot.waitUntil(lambda: not ctl.regions_panel.accept_button.isEnabled(), timeout=5000)

    if len(regions) > 1:
        qtbot.keyClick(view, Qt.Key.Key_N)
        assert ctl.regions_panel.current() == regions[1]
    dismissed = ctl.regions_panel.current()
    qtbot.mouseClick(ctl.regions_panel.dismiss_button, Qt.MouseButton.LeftButton)
    assert ctl.regions_panel.list.count() == len(regions) - 1
    assert dismissed.id not in {r.id for r, _ in ctl.regions_layer._regions}

    window.close()
    again = make_window(qtbot)  # the decisions are remembered per slide in the workspace
    again.analysis.add_scan_dir(analysed)
    again.open_path(str(marked_slide))
    panel = again.analysis.regions_panel
    assert panel.list.count() == len(regions) - 1 and dismissed.id in panel.dismissed
    panel.show_dismissed.setChecked(True)
    assert panel.list.count() == len(regions)
    again.close()


def test_reopening_a_slide_shows_its_analysis_without_recomputing(qtbot, workspace, analysed, marked_slide):
    win = make_window(qtbot)
    qh = win.open_path(str(marked_slide)).slide.quickhash
    win.close()
    folder = workspace.analysis_dir(qh)
    shutil.copytree(analysed, folder)
    stamp = (folder / "summary.json").stat().st_mtime_ns
    win = make_window(qtbot)
    win.open_path(str(marked_slide))
    ctl = win.analysis
    assert ctl.result is not None and ctl.result.folder == folder  # shown at once, no event loop needed
    assert not ctl.analyse_if_missing() and not ctl.worker.busy
    assert (folder / "summary.json").stat().st_mtime_ns == stamp
    assert len(ctl.regions_layer._regions) == len(load_result(folder).regions)
    win.close()


def test_a_failed_analysis_says_why_once_and_the_window_stays_usable(window, qtbot, marked_slide, tmp_path):
    window.open_path(str(marked_slide))
    ctl = window.analysis
    assert ctl.worker.start(str(marked_slide), "x", tmp_path / "out", encoder="no-such-encoder")
    qtbot.waitUntil(lambda: bool(window.findChildren(QMessageBox)), timeout=30000)
    qtbot.wait(50)
    boxes = window.findChildren(QMessageBox)
    assert len(boxes) == 1 and "no-such-encoder" in boxes[0].text()
    assert ctl.analyse_action.isEnabled() and not ctl.progress.active and ctl.result is None


def test_a_slide_without_pixel_size_asks_for_it_and_analyses_with_it(window, qtbot):
    view = window.open_path(str(TCGA_NO_MPP))
    ctl = window.analysis
    assert ctl.analyse()
    qtbot.waitUntil(lambda: bool(window.findChildren(PixelSizeDialog)), timeout=30000)
    assert not window.findChildren(QMessageBox)  # asked, not reported as a failure
    dialog = window.findChildren(PixelSizeDialog)[0]
    assert "no pixel size" in dialog.prompt.text()
    started: list[float | None] = []
    real_start = ctl.worker.start
    ctl.worker.start = lambda *a, **kw: started.append(kw.get("slide_mpp")) or real_start(*a, **kw)
    qtbot.keyClick(dialog, Qt.Key.Key_Return)  # nothing is pre-chosen: Enter alone declares no magnification
    assert dialog.isVisible() and started == []
    qtbot.mouseClick(dialog.presets[1], Qt.MouseButton.LeftButton)  # 20x
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert started == [0.5] and ctl.worker.busy
    shown = window.views[0]  # the viewer keeps the declared size too: the slide is shown with it
    assert shown.slide.info.mpp == 0.5 and shown.slide.info.mpp_source == "user" and ctl.view is shown
    assert "0.5 µm/px (user)" in window.status_view.text()
    ctl.worker.cancel()
    qtbot.waitUntil(lambda: not ctl.worker.busy, timeout=30000)
    assert not (ctl.workspace.analysis_dir(view.slide.quickhash) / "summary.json").exists()


def test_a_slide_declared_once_is_analysed_again_without_asking(qtbot, workspace):
    first = make_window(qtbot)
    first.open_path(str(TCGA_NO_MPP))
    assert first.declare_pixel_size(0.25)
    first.close()
    window = make_window(qtbot)  # a later session on the same workspace
    window.open_path(str(TCGA_NO_MPP))
    ctl = window.analysis
    started: list[float | None] = []
    real_start = ctl.worker.start
    ctl.worker.start = lambda *a, **kw: started.append(kw.get("slide_mpp")) or real_start(*a, **kw)
    assert ctl.analyse() and started == [0.25]
    ctl.worker.cancel()
    qtbot.waitUntil(lambda: not ctl.worker.busy, timeout=30000)
    assert not window.findChildren(PixelSizeDialog) and not window.findChildren(QMessageBox)
    window.close()


def test_the_pixel_size_prompt_takes_a_typed_value_and_refuses_a_wrong_one(qtbot):
    dialog = PixelSizeDialog("scan.tif")
    qtbot.addWidget(dialog)
    chosen: list[float] = []
    dialog.chosen.connect(chosen.append)
    dialog.show()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert dialog.group.checkedButton() is None and not ok.isEnabled()
    qtbot.keyClicks(dialog.value, "O.3")  # a letter O for a zero
    assert dialog.other.isChecked() and not ok.isEnabled()
    assert dialog.problem.text() == "'O.3' is not a pixel size between 0.05 and 50 µm/px."
    qtbot.keyClick(dialog.value, Qt.Key.Key_Return)
    assert chosen == [] and dialog.isVisible()
    dialog.value.clear()
    qtbot.keyClicks(dialog.value, "0,3")
    assert ok.isEnabled() and dialog.problem.text() == ""
    qtbot.keyClick(dialog.value, Qt.Key.Key_Return)
    assert chosen == [0.3] and not dialog.isVisible()


def test_the_regions_dock_counts_one_region_and_two_regions_in_words(qtbot):
    panel = RegionsPanel()
    qtbot.addWidget(panel)
    one = RegionItem("a", 1, "pen", 0.9, 1, None, box(0, 0, 224, 224))
    two = RegionItem("b", 2, "pen", 0.8, 2, 0.025, box(500, 0, 948, 224))
    panel.set_regions(None, [one], set(), set())
    assert panel.header.text().startswith("1 region, best first")
    assert panel.list.item(0).text().endswith("\n1 tile")
    panel.set_regions(None, [one, two], {"b"}, set())
    assert panel.header.text().startswith("2 regions, best first · 1 dismissed")
    panel.show_dismissed.setChecked(True)
    assert panel.list.item(1).text().endswith("\n2 tiles · 0.025 mm²")
    panel.shutdown()


def test_an_analysis_made_otherwise_is_shown_and_marked_for_a_rerun(window, analysed, marked_slide, tmp_path):
    older = tmp_path / "scan" / analysed.name
    shutil.copytree(analysed, older)
    summary = json.loads((older / "summary.json").read_text())
    assert staleness_note(summary["settings"], window.analysis.run) == ""  # what the viewer runs now reads as current
    summary["settings"].update(analysis_version=ANALYSIS_VERSION - 1, encoder="uni")
    (older / "summary.json").write_text(json.dumps(summary))
    ctl = window.analysis
    ctl.add_scan_dir(older.parent)
    window.open_path(str(marked_slide))
    assert ctl.result.folder == older and ctl.regions_panel.list.count() == len(ctl.result.regions) >= 1
    assert ctl.regions_panel.header.text().endswith(
        "\nMade with an earlier version of the analysis; encoder 'uni', not 'pathview-he': "
        "re-run (Ctrl+Shift+A) to update.")


def test_a_run_uses_the_chosen_tile_size_and_the_choice_is_kept_for_the_next_session(
        qtbot, workspace, analysed, marked_slide):
    win = make_window(qtbot)
    ctl = win.analysis
    ctl.add_scan_dir(analysed.parent)
    view = win.open_path(str(marked_slide))
    assert ctl.result.folder == analysed and "Made with" not in ctl.regions_panel.header.text()
    ctl.settings_action.trigger()
    dialog = win.findChild(AnalysisSettingsDialog)
    assert dialog.isVisible() and dialog.run() == AnalysisConfig()  # the defaults before anything is chosen
    dialog.tile_mpp.clear()
    qtbot.keyClicks(dialog.tile_mpp, "1")
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert ctl.run == AnalysisConfig(tile_mpp=1.0)
    # The shown analysis was tiled at 0.5 µm/px: it is now marked, as the chosen settings would make it otherwise.
    assert ctl.regions_panel.header.text().endswith(
        "\nMade with tiles at 0.5 µm/px, not 1: re-run (Ctrl+Shift+A) to update.")

    out = workspace.analysis_dir(view.slide.quickhash)
    ctl.analyse_action.trigger()
    qtbot.waitUntil(lambda: not ctl.worker.busy and ctl.result is not None and ctl.result.folder == out,
                    timeout=90000)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["tile_mpp"] == 1.0 and summary["settings"]["encoder"] == "pathview-he"
    assert summary["tiles"] < load_result(analysed).summary["tiles"]  # coarser tiles: fewer of them
    assert "Made with" not in ctl.regions_panel.header.text()
    win.close()

    again = make_window(qtbot)  # a new session of the viewer runs what was chosen
    assert again.analysis.run == AnalysisConfig(tile_mpp=1.0)
    again.close()


def test_stored_settings_that_make_no_sense_fall_back_to_the_defaults(user_settings):
    settings = QSettings("pathview", "pathview")
    settings.setValue("analysis/tile_mpp", "O.5")  # a hand-edited file: letter O for a zero
    settings.setValue("analysis/device", "cuda:1")
    assert load_run(settings) == AnalysisConfig(device="cuda:1")
    settings.setValue("analysis/tile_mpp", "900")
    assert load_run(settings).tile_mpp == 0.5
    settings.setValue("analysis/tile_mpp", "2")
    assert load_run(settings).tile_mpp == 2.0


def test_the_settings_list_every_encoder_and_only_installed_ones_can_be_chosen(qtbot, tmp_path, monkeypatch, capsys):
    from pathview.cli import main

    models = tmp_path / "models"
    (models / "uni").mkdir(parents=True)
    (models / "uni" / "pytorch_model.bin").write_bytes(b"")  # found where `pathview models` looks: installed
    monkeypatch.setenv("PATHVIEW_MODELS", str(models))
    assert main(["models", "--json"]) == 0
    cli = {r["name"]: r["installed"] for r in json.loads(capsys.readouterr().out) if "embed_dim" in r}

    dialog = AnalysisSettingsDialog(AnalysisConfig(), gpus=None)
    qtbot.addWidget(dialog)
    listed = dialog.installed_encoders()
    assert listed == cli and listed["pathview-he"] and listed["uni"] and not all(listed.values())
    missing = next(i for i in range(dialog.encoder.count()) if not listed[dialog.encoder.itemData(i)])
    assert dialog.encoder.itemText(missing).endswith(" (not installed)")
    dialog.show()
    qtbot.keyClick(dialog.encoder, Qt.Key.Key_Down)  # the arrow passes over the ones not installed
    assert dialog.encoder.currentData() == "uni"
    assert dialog.run().encoder == "uni"


def devices(dialog: AnalysisSettingsDialog) -> list[str]:
    return [dialog.device.itemText(i) for i in range(dialog.device.count())]


def test_the_device_list_offers_the_gpus_torch_sees_once_it_is_known(qtbot, window):
    import torch

    dialog = AnalysisSettingsDialog(AnalysisConfig(device="cuda:1"), gpus=None)
    qtbot.addWidget(dialog)
    assert devices(dialog) == ["auto", "cpu", "cuda:1"] and dialog.gpu_note.text() == "looking for GPUs…"
    dialog.set_gpus(2)
    assert devices(dialog) == ["auto", "cpu", "cuda:0", "cuda:1"] and dialog.device.currentText() == "cuda:1"
    assert dialog.gpu_note.text() == "torch sees 2 GPUs"

    ctl = window.analysis  # the viewer asks a child Python (importing torch takes seconds), once
    shown = ctl.open_settings()
    assert devices(shown)[:2] == ["auto", "cpu"]
    qtbot.waitUntil(lambda: ctl.gpu_probe.count is not None, timeout=60000)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert ctl.gpu_probe.count == gpus
    assert devices(shown) == ["auto", "cpu", *(f"cuda:{i}" for i in range(gpus))]
    assert shown.gpu_note.text() == f"torch sees {count(gpus, 'GPU')}"
    shown.reject()
    assert ctl.open_settings().gpu_note.text() == f"torch sees {count(gpus, 'GPU')}"  # known at once the second time


def test_a_reference_bank_is_checked_when_chosen_and_a_wrong_file_is_refused(qtbot, tmp_path):
    import h5py

    dialog = AnalysisSettingsDialog(AnalysisConfig(), gpus=0)
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    rng = np.random.default_rng(0)
    bank = build_bank([rng.normal(size=(20, 8)), rng.normal(size=(20, 8))], "pathview-he", tmp_path / "normal.h5")
    assert dialog.choose_reference(str(bank.path)) and dialog.problem.text() == ""
    assert dialog.run().reference == str(bank.path) and dialog.reference_label.text() == "normal.h5"

    notes = tmp_path / "notes.h5"
    notes.write_text("not hdf5")
    tiles = tmp_path / "tiles.h5"
    with h5py.File(tiles, "w") as f:
        f["features"] = np.zeros((2, 8))
    for wrong in (notes, tiles, tmp_path):
        assert not dialog.choose_reference(str(wrong))
        assert dialog.problem.text() == \
            f"'{wrong.name}' is not a pathview reference bank (make one with `pathview reference build`)"
        assert dialog.run().reference == str(bank.path)  # the bank chosen before is kept
    assert not dialog.choose_reference(str(tmp_path / "gone.h5"))
    assert dialog.problem.text() == (f"reference bank '{tmp_path / 'gone.h5'}' not found "
                                     "(make one with `pathview reference build`)")

    other = build_bank([rng.normal(size=(20, 8)), rng.normal(size=(20, 8))], "uni", tmp_path / "uni-normal.h5")
    assert dialog.choose_reference(str(other.path))  # a bank, but of another encoder's features
    assert dialog.problem.text() == ("reference bank 'uni-normal.h5' was built with encoder 'uni', not "
                                     "'pathview-he': choose that encoder, another bank or none")
    assert not ok.isEnabled()
    assert dialog.choose_reference(None) and ok.isEnabled() and dialog.run().reference is None


def test_a_stored_encoder_no_longer_installed_is_replaced_with_a_note(qtbot, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # models only in tmp_path/models: the built-in encoder and uni
    monkeypatch.setenv("PATHVIEW_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "models" / "uni").mkdir(parents=True)
    (tmp_path / "models" / "uni" / "pytorch_model.bin").write_bytes(b"")
    dialog = AnalysisSettingsDialog(AnalysisConfig(encoder="virchow2"), gpus=0)
    qtbot.addWidget(dialog)
    assert dialog.run().encoder == "pathview-he"
    assert dialog.encoder_note.text() == \
        "the encoder 'virchow2' chosen before is not installed: pathview-he is selected"
    assert dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    dialog.encoder.setCurrentIndex(dialog.encoder.findData("uni"))  # the user picks one: the note has done its job
    assert dialog.encoder_note.text() == "" and dialog.run().encoder == "uni"
    unknown = AnalysisSettingsDialog(AnalysisConfig(encoder="retired-net"), gpus=0)
    qtbot.addWidget(unknown)
    assert unknown.encoder_note.text() == "the encoder 'retired-net' chosen before is unknown: pathview-he is selected"
    installed = AnalysisSettingsDialog(AnalysisConfig(), gpus=0)
    qtbot.addWidget(installed)
    assert installed.encoder_note.text() == ""


def test_a_stored_reference_bank_that_is_gone_keeps_ok_disabled_until_another_or_none_is_chosen(qtbot, tmp_path):
    rng = np.random.default_rng(0)
    bank = build_bank([rng.normal(size=(20, 8)), rng.normal(size=(20, 8))], "pathview-he", tmp_path / "normal.h5")
    gone = tmp_path / "gone.h5"
    for pick in ("another bank", "None"):
        dialog = AnalysisSettingsDialog(AnalysisConfig(reference=str(gone)), gpus=0)
        qtbot.addWidget(dialog)
        chosen: list[AnalysisConfig] = []
        dialog.chosen.connect(chosen.append)
        ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert not ok.isEnabled() and dialog.reference_label.text() == "gone.h5 (cannot be used)"
        assert dialog.problem.text() == (f"The reference bank chosen before cannot be used: reference bank '{gone}' "
                                         "not found (make one with `pathview reference build`). "
                                         "Choose another bank, or None.")
        dialog.accept()  # Enter: the dialog stays open and nothing is chosen
        assert chosen == []
        assert not dialog.choose_reference(str(tmp_path))  # a wrong pick leaves it blocked
        assert not ok.isEnabled()
        if pick == "None":
            (none,) = [b for b in dialog.findChildren(QPushButton) if b.text() == "None"]
            qtbot.mouseClick(none, Qt.MouseButton.LeftButton)
        else:
            assert dialog.choose_reference(str(bank.path))
        assert ok.isEnabled() and dialog.problem.text() == ""
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
        assert chosen == [AnalysisConfig(reference=str(bank.path) if pick != "None" else None)]


def test_the_staleness_note_follows_the_chosen_reference_bank():
    made = {"analysis_version": ANALYSIS_VERSION, "encoder": "pathview-he", "tile_mpp": 0.5,
            "reference": "normal.h5:40:0123456789abcdef"}
    assert staleness_note(made, AnalysisConfig(reference="/banks/normal.h5")) == ""
    assert staleness_note(made, AnalysisConfig()) == \
        "Made with reference bank 'normal.h5', not none: re-run (Ctrl+Shift+A) to update."
    assert staleness_note({**made, "reference": None}, AnalysisConfig(reference="/banks/colon.h5")) == \
        "Made with no reference bank, not 'colon.h5': re-run (Ctrl+Shift+A) to update."


def test_an_analysis_that_left_out_damaged_tiles_says_so(window, analysed, marked_slide, tmp_path):
    damaged = tmp_path / "scan" / analysed.name
    shutil.copytree(analysed, damaged)
    summary = json.loads((damaged / "summary.json").read_text())
    summary.update(unreadable_tiles=2, unreadable_boxes=[[0, 0, 448, 448], [448, 0, 448, 448]])
    (damaged / "summary.json").write_text(json.dumps(summary))
    window.analysis.add_scan_dir(damaged.parent)
    window.open_path(str(marked_slide))
    assert window.analysis.regions_panel.header.text().endswith(
        "\n2 tiles with damaged image data could not be read and were left out: the numbers cover the rest. "
        "Look at the glass there.")


def test_view_scan_dir_opens_the_slide_with_its_scan_outputs(qtbot, workspace, analysed, monkeypatch, marked_slide):
    from PySide6.QtWidgets import QApplication

    from pathview.cli import main

    shown: list = []

    def fake_exec() -> int:  # instead of the event loop: look at the window run_viewer built, then close it
        win = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        shown.append(win.analysis.result.folder if win.analysis.result else None)
        win.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", staticmethod(fake_exec))
    assert main(["view", str(marked_slide), "--scan-dir", str(analysed.parent)]) == 0
    assert shown == [analysed]


def test_view_refuses_a_scan_dir_that_is_not_there(tmp_path, capsys):
    from pathview.cli import main

    assert main(["view", "--scan-dir", str(tmp_path / "no-such-folder")]) == 2
    err = capsys.readouterr().err.strip()
    missing = tmp_path / "no-such-folder"
    assert err == f"pathview: error: cannot read the analysis in '{missing}': there is no such folder"
