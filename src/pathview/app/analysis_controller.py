"""Anomaly analysis in the viewer: run it in the background, show its heatmap and regions, act on regions.

Wires the core's analysis to the main window: the Analysis menu and toolbar button,
the status-bar progress, the "Heatmap" and "Regions" docks, and the overlay layers of
the slide view. When a slide opens, its finished analysis (in the workspace or in a
scan output folder given with ``--scan-dir``) is shown at once; nothing is recomputed.
Runs use the encoder, device, tile size and reference bank chosen in Analysis ›
Analysis settings (kept between sessions), and a shown analysis made otherwise is marked.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog

from ..analysis.analyze import unreadable_note
from ..errors import MissingMppError, PathviewError
from ..scan import AnalysisConfig, find_scan_output
from ..viewport import fit_viewport
from ..wording import count
from ..workspace import Workspace
from .analysis_heatmap_panel import HeatmapPanel
from .analysis_progress import AnalysisProgress
from .analysis_regions_layer import RegionsLayer
from .analysis_result import AnalysisResult, RegionItem, load_result
from .analysis_settings import AnalysisSettingsDialog, GpuProbe, load_run, save_run
from .analysis_reviews import RegionReviews
from .analysis_staleness import staleness_note
from .analysis_worker import AnalysisWorker
from .heatmap_layer import HeatmapLayer
from .regions_panel import RegionsPanel
from .scrolling import scrollable

if TYPE_CHECKING:
    from .main_window import MainWindow
    from .pixel_size_dialog import PixelSizeDialog
    from .slide_view import SlideView

MARGIN = 1.5  # a visited region fills two thirds of the view, with its surroundings around it
MIN_FIELD_TILES = 5  # ... and a one-tile region still shows a field five tiles wide, not one tile blown up


class AnalysisController(QObject):
    """Owns the analysis docks, actions and layers of one main window."""

    def __init__(self, window: MainWindow, workspace: Workspace | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.workspace = workspace or Workspace.at(None)
        self.scan_dirs: list[Path] = []
        self.view: SlideView | None = None
        self.result: AnalysisResult | None = None
        self.reviews: RegionReviews | None = None
        #: How this viewer's runs encode and tile; a loaded result made otherwise is marked.
        self.run: AnalysisConfig = load_run(window.settings)
        self.gpu_probe = GpuProbe(self)
        self.heatmap = HeatmapLayer((1, 1))
        self.regions_layer = RegionsLayer()
        self.worker = AnalysisWorker(self)
        self.progress = AnalysisProgress()
        self.worker.progress.connect(self.progress.update_from)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.progress.cancel_requested.connect(self.worker.cancel)
        window.statusBar().addPermanentWidget(self.progress)
        self.regions_panel = RegionsPanel()
        self.regions_panel.region_chosen.connect(self.go_to)
        self.regions_panel.accept_requested.connect(self.accept)
        self.regions_panel.dismiss_requested.connect(self.dismiss)
        self.regions_panel.restore_requested.connect(self.restore)
        self.heatmap_panel = HeatmapPanel(self.heatmap.settings)
        self.heatmap_panel.settings_changed.connect(self._on_settings)
        self.heatmap_panel.shown_changed.connect(self.show_heatmap)
        # Regions under the Findings (both are lists of places on the slide); the heatmap's settings
        # under the overview they colour. (Tabifying with the Findings left a stray tab bar on screen.)
        self.regions_dock = window._dock("Regions", Qt.DockWidgetArea.LeftDockWidgetArea, self.regions_panel)
        self.heatmap_dock = window._dock("Heatmap", Qt.DockWidgetArea.RightDockWidgetArea,
                                         scrollable(self.heatmap_panel))
        window.splitDockWidget(window.overview_dock, self.heatmap_dock, Qt.Orientation.Vertical)
        window.resizeDocks([window.annotations.dock, self.regions_dock], [3, 2], Qt.Orientation.Vertical)
        self._build_actions()
        window.slide_opened.connect(self.attach)
        window.annotations.controller.annotations_changed.connect(self._review_changed)

    def _build_actions(self) -> None:
        w = self.window
        menu = w.menuBar().addMenu("&Analysis")
        self.analyse_action = w._action(menu, "&Analyse slide", lambda: self.analyse(), "Ctrl+Shift+A")
        self.analyse_action.setToolTip("Score every tile for outliers and artifacts, in the background")
        self.cancel_action = w._action(menu, "&Cancel analysis", self.progress.cancel)
        self.cancel_action.setEnabled(False)
        self.settings_action = w._action(menu, "Analysis se&ttings…", self.open_settings)
        self.settings_action.setToolTip("Encoder, device, tile size and reference bank of the next analyses")
        menu.addSeparator()
        self.heatmap_action = w._action(menu, "Show &heatmap", self.show_heatmap, "H")
        self.heatmap_action.setCheckable(True)
        self.heatmap_action.setChecked(True)
        w._action(menu, "&Next region", lambda: self.regions_panel.step(1), "N")
        w._action(menu, "&Previous region", lambda: self.regions_panel.step(-1), "Shift+N")
        menu.addSeparator()
        w._action(menu, "Open &scan outputs folder…", self._scan_dir_dialog)
        toolbar = w.addToolBar("Analysis")
        toolbar.setObjectName("Analysis toolbar")
        toolbar.addAction(self.analyse_action)
        toolbar.addAction(self.heatmap_action)

    # -- slides and results -------------------------------------------------------------------
    def add_scan_dir(self, folder: str | os.PathLike) -> None:
        """Also look for finished analyses in ``folder`` (``pathview scan -o`` output or one slide's folder)."""
        path = Path(folder)
        if path not in self.scan_dirs:
            self.scan_dirs.append(path)
        if self.view is not None and self.result is None:
            self._load_existing()

    def _scan_dir_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Folder of scan outputs")
        if folder:
            self.add_scan_dir(folder)
            if self.view is not None and self.result is None:
                self.window.statusBar().showMessage(f"No finished analysis of this slide in {folder}", 8000)

    def attach(self, view: SlideView) -> None:
        """Show the analysis of the main view's slide (the first view; a slide opened beside it is left alone)."""
        if not self.window.views or view is not self.window.views[0]:
            return
        self.view = view
        self.heatmap = HeatmapLayer(view.slide.dimensions)
        self.heatmap.visible = self.heatmap_action.isChecked()
        self.heatmap.set_settings(self.heatmap_panel.settings())
        self.regions_layer = RegionsLayer()
        # Under the annotations (drawn later), so the pathologist's own outlines stay on top.
        view.layers[0:0] = [self.heatmap, self.regions_layer]
        view.update()
        self.reviews = RegionReviews(self.workspace, view.slide.quickhash)
        self._show(None)
        self._load_existing()

    def _load_existing(self) -> None:
        assert self.view is not None
        folder = find_scan_output([self.workspace, *self.scan_dirs], self.view.slide.quickhash)
        if folder is not None:
            self._load(folder)
        elif self.worker.busy and self.worker.quickhash == self.view.slide.quickhash:
            self.regions_panel.set_regions(None, [], set(), set(), "Analysing this slide…")

    def _load(self, folder: str | os.PathLike) -> None:
        try:
            result = load_result(folder)
        except PathviewError as exc:
            self.window.show_error("Cannot show the analysis", str(exc))
            return
        self._show(result)
        s = result.summary
        tiles = count(s.get("tiles", len(result.coords)), "tile")
        self.window.statusBar().showMessage(
            f"Analysis loaded: {count(len(result.regions), 'region')}, {tiles} "
            f"({s.get('settings', {}).get('encoder', '?')}, {s.get('created', '')[:10]}) from {result.folder}", 10000)

    def _show(self, result: AnalysisResult | None) -> None:
        self.result = result
        self.heatmap.set_result(result)
        self.heatmap_panel.set_result(result)
        self.heatmap_dock.setVisible(result is not None)  # its controls mean nothing before an analysis
        reviews = self.reviews
        if result is None:
            self.regions_layer.set_regions([])
            self.regions_panel.set_regions(None, [], set(), set(), "No analysis for this slide yet: "
                                           "Analysis › Analyse slide (Ctrl+Shift+A).")
        else:
            found = "" if result.regions else "The analysis found no region above the threshold."
            unreadable = unreadable_note(result.summary)
            note = "\n".join(filter(None, [staleness_note(result.summary.get("settings", {}), self.run), found,
                                            unreadable and f"{unreadable}. Look at the glass there."]))
            self.regions_panel.set_regions(self.view.slide if self.view else None, result.regions,
                                           reviews.dismissed if reviews else set(), self._accepted(), note)
            self._refresh_outlines()
        if self.view is not None:
            self.view.update()

    def _refresh_outlines(self) -> None:
        dismissed = self.reviews.dismissed if self.reviews else set()
        regions = self.result.regions if self.result else []
        self.regions_layer.set_regions([r for r in regions if r.id not in dismissed])
        if self.view is not None:
            self.view.update()

    # -- running ------------------------------------------------------------------------------
    def analyse(self) -> bool:
        """Start analysing the main view's slide in the background; False when there is none or one runs.

        A pixel size the user declared for the slide goes with the run (the core records it as "user").
        """
        if self.view is None:
            self.window.statusBar().showMessage("Open a slide first", 5000)
            return False
        slide = self.view.slide
        if self.worker.busy:
            self.window.statusBar().showMessage("An analysis is already running; cancel it first", 5000)
            return False
        user_mpp = slide.mpp if slide.info.mpp_source == "user" else None
        out = self.workspace.analysis_dir(slide.quickhash)
        run = self.run
        self.worker.start(str(slide.path), slide.quickhash, out, slide_mpp=user_mpp, encoder=run.encoder,
                          device=run.device, tile_mpp=run.tile_mpp, reference=run.reference)
        self.progress.begin(Path(slide.path).name)
        self.analyse_action.setEnabled(False)
        self.cancel_action.setEnabled(True)
        if self.result is None:
            self.regions_panel.set_regions(None, [], set(), set(), "Analysing this slide…")
        return True

    def analyse_if_missing(self) -> bool:
        """Start an analysis unless the slide already has a finished one (the demo's first run)."""
        return self.result is None and self.analyse()

    def _idle(self) -> None:
        self.progress.end()
        self.analyse_action.setEnabled(True)
        self.cancel_action.setEnabled(False)

    def _on_finished(self, quickhash: str, folder: str) -> None:
        self._idle()
        if self.view is not None and self.view.slide.quickhash == quickhash:
            self._load(folder)
        else:
            self.window.statusBar().showMessage(f"Analysis finished: {folder}", 10000)

    def _on_failed(self, error_type: str, message: str) -> None:
        self._idle()
        if self.result is None and self.view is not None:
            self._show(None)
        if error_type == MissingMppError.__name__ and self.view is not None:
            self.ask_pixel_size()
            return
        self.window.show_error("Analysis failed", message)

    def ask_pixel_size(self) -> PixelSizeDialog | None:
        """Ask (without blocking) for the pixel size a slide does not record; the viewer keeps it, then analyses."""
        return self.window.ask_pixel_size(f"the analysis needs to tile it at {self.run.tile_mpp:g} µm/px",
                                          then=self.analyse)

    def open_settings(self) -> AnalysisSettingsDialog:
        """Show the analysis settings (without blocking); accepted ones are kept and used from the next run on."""
        self.gpu_probe.start()
        dialog = AnalysisSettingsDialog(self.run, self.gpu_probe.count, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.gpu_probe.counted.connect(dialog.set_gpus)
        dialog.chosen.connect(self.set_run)
        dialog.open()
        return dialog

    def set_run(self, run: AnalysisConfig) -> None:
        """Use ``run`` for the next analyses and remember it; the shown analysis is marked if made otherwise."""
        self.run = run
        save_run(self.window.settings, run)
        if self.result is not None:
            self._show(self.result)
        bank = f", reference bank {Path(run.reference).name}" if run.reference else ""
        self.window.statusBar().showMessage(f"Next analyses: {run.encoder} on {run.device}, tiles at "
                                            f"{run.tile_mpp:g} µm/px{bank}", 8000)

    def _on_cancelled(self, message: str) -> None:
        self._idle()
        if self.result is None and self.view is not None:
            self._show(None)
        self.window.statusBar().showMessage(f"Analysis cancelled: {message}", 8000)

    # -- overlay ------------------------------------------------------------------------------
    def show_heatmap(self, shown: bool | None = None) -> None:
        """Show or hide the heatmap (H toggles); the menu, toolbar and panel follow."""
        shown = not self.heatmap.visible if shown is None else bool(shown)
        self.heatmap.visible = shown
        for widget in (self.heatmap_action, self.heatmap_panel.show_box):
            widget.blockSignals(True)
            widget.setChecked(shown)
            widget.blockSignals(False)
        if self.view is not None:
            self.view.update()

    def _on_settings(self, settings) -> None:
        self.heatmap.set_settings(settings)
        if self.view is not None:
            self.view.update()

    # -- regions ------------------------------------------------------------------------------
    def go_to(self, region: RegionItem) -> None:
        """Centre the view on ``region`` and zoom to fit it with a margin (never closer than a few tiles' field)."""
        if self.view is None:
            return
        v = self.view.view
        fit = fit_viewport(self.view.slide.dimensions, v.width, v.height).downsample
        least = MIN_FIELD_TILES * self.result.patch_size_level0 / min(v.width, v.height) if self.result else 0.0
        framed = v.framing(region.bbox, margin=MARGIN, closest=least)
        self.view.set_view(replace(framed, downsample=max(min(framed.downsample, fit), 0.25)))
        self.regions_layer.selected = region.id
        self.regions_panel.select(region.id)
        self.view.update()

    def accept(self, region: RegionItem) -> str | None:
        """File ``region`` as an annotation (source "anomaly", its class) through the annotations' undo history.

        Returns the annotation id; the Findings dock shows it at once and Ctrl+Z takes it back.
        """
        state = self.window.annotations.controller.states.get(self.view) if self.view is not None else None
        if state is None or self.reviews is None:
            self.window.show_error("Cannot save the finding", "annotations are not available for this slide")
            return None
        from ..findings import Annotation, AnnotationClass

        store = state.history.store
        note = f"Found by the anomaly analysis: score {region.score:.2f} over {count(region.tiles, 'tile')}."
        ann = Annotation(region.geometry, kind="polygon", class_name=region.title,
                         name=f"#{region.rank} {region.title}", note=note,
                         source="anomaly", extra={"pathview": {"kind": "anomaly-region", "class": region.cls,
                                                               "score": region.score, "region_id": region.id}})
        try:
            if region.title not in store.class_colors():
                store.set_class(AnnotationClass(region.title, region.color))
            state.history.add_many([ann], label=f"accept {ann.name}")
            self.reviews.accept(region.id, ann.id)
        except (PathviewError, OSError) as exc:
            self.window.show_error("Cannot save the finding", str(exc))
            return None
        self._review_changed()
        self.window.annotations.controller.select([ann.id])
        self.window.statusBar().showMessage(f"Added “{ann.name}” to the findings (Ctrl+Z takes it back)", 6000)
        return ann.id

    def dismiss(self, region: RegionItem) -> None:
        """Hide ``region`` here and on the slide; remembered for the slide in the workspace."""
        self._decide(lambda reviews: reviews.dismiss(region.id))

    def restore(self, region: RegionItem) -> None:
        self._decide(lambda reviews: reviews.restore(region.id))

    def _decide(self, change) -> None:
        if self.reviews is None:
            return
        try:
            change(self.reviews)
        except OSError as exc:  # e.g. a read-only workspace: the choice holds until the slide closes
            self.window.show_error("Cannot remember the choice", f"{self.reviews.path}: {exc.strerror or exc}")
        self._review_changed()

    def _review_changed(self) -> None:
        if self.reviews is None:
            return
        self.regions_panel.set_review(self.reviews.dismissed, self._accepted())
        self._refresh_outlines()

    def _accepted(self) -> set[str]:
        """Regions whose finding still exists (an undone or deleted one can be accepted again)."""
        if self.reviews is None or self.view is None:
            return set()
        state = self.window.annotations.controller.states.get(self.view)
        return {rid for rid, aid in self.reviews.accepted.items() if state is not None and aid in state.scene}

    def shutdown(self) -> None:
        """Stop the background work (window closing); an unfinished analysis leaves no summary.json."""
        self.worker.shutdown()
        self.gpu_probe.stop()
        self.regions_panel.shutdown()
