"""The main window: one or two slide views, overview, info, slide browser, menus, status bar."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QWidget,
)

from ..errors import PathviewError
from ..pixel_sizes import DeclaredPixelSizes, open_declared
from ..slide import Slide, open_slide
from ..viewport import PRESETS, Viewport
from .analysis_controller import AnalysisController
from .annotation_menu import AnnotationMenu
from .chat_panel import ChatPanel
from .info_panel import InfoPanel
from .overview import OverviewWidget
from .pixel_size_dialog import PixelSizeDialog
from .scrolling import scrollable
from .slide_browser import SlideBrowser
from .slide_view import SlideView

MAX_RECENT = 10


class MainWindow(QMainWindow):
    """Emits ``slide_opened(SlideView)`` after a slide is shown, so features attach their layers and panels,
    and ``view_replaced(old, new)`` when the same slide is reopened in a new view (a pixel size declared),
    so features carry their state over instead of starting afresh."""

    slide_opened = Signal(object)
    view_replaced = Signal(object, object)

    def __init__(self, cache_mb: int = 512, workspace: str | Path | None = None) -> None:
        super().__init__()
        self.setWindowTitle("pathview")
        screen = QGuiApplication.primaryScreen().availableGeometry()
        self.resize(min(1400, screen.width()), min(900, screen.height()))  # never taller than the screen
        self.setAcceptDrops(True)
        self.cache_bytes = cache_mb * 1024 * 1024
        self.settings = QSettings("pathview", "pathview")
        self.views: list[SlideView] = []
        self.sync_views = True
        self._syncing = False
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.placeholder = QLabel("Open a slide: File › Open (Ctrl+O), drop a file here, or browse a folder.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.splitter.addWidget(self.placeholder)
        self.setCentralWidget(self.splitter)
        self.overview_dock = self._dock("Overview", Qt.DockWidgetArea.RightDockWidgetArea)
        self.info_dock = self._dock("Slide information", Qt.DockWidgetArea.RightDockWidgetArea)
        self.browser = SlideBrowser()
        self.browser.open_requested.connect(self.open_path)
        self.browser_dock = self._dock("Slides", Qt.DockWidgetArea.LeftDockWidgetArea, self.browser)
        self.browser_dock.hide()
        self.assistant = ChatPanel()
        self.assistant_dock = self._dock("Assistant", Qt.DockWidgetArea.RightDockWidgetArea, self.assistant)
        self.slide_opened.connect(self.assistant.set_view)
        self.tabifyDockWidget(self.info_dock, self.assistant_dock)  # the chat needs the height
        self.assistant_dock.raise_()
        self.status_position = QLabel()
        self.status_view = QLabel()
        self.statusBar().addWidget(self.status_position, 1)
        self.statusBar().addPermanentWidget(self.status_view)
        self._build_menus()
        self.annotations = AnnotationMenu(self, workspace)  # tools, Findings dock, import/export
        self.analysis = AnalysisController(self, self.annotations.controller.workspace)  # one workspace for both
        self.pixel_sizes = DeclaredPixelSizes(self.analysis.workspace)
        # In the order slide_opened reaches them, so the new view stacks its layers as the old one did.
        self.view_replaced.connect(self.assistant.replace_view)
        self.view_replaced.connect(self.annotations.controller.replace_view)
        self.view_replaced.connect(lambda _old, new: self.analysis.attach(new))  # it reads its state from disk

    def _dock(self, title: str, area, widget: QWidget | None = None) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        if widget is not None:
            dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    # -- menus --------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open slide…", self.open_dialog, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open &beside…", lambda: self.open_dialog(beside=True), "Ctrl+Shift+O")
        self._action(file_menu, "Browse &folder…", self.browse_dialog, "Ctrl+B")
        self.recent_menu = file_menu.addMenu("&Recent slides")
        self._refresh_recent()
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        view_menu = self.menuBar().addMenu("&View")
        self._action(view_menu, "Zoom to &fit  (0)", lambda: self._each(lambda v: v.zoom_to_fit()))
        for i, mag in enumerate(PRESETS):
            self._action(view_menu, f"{mag:g}x  ({i + 1})", lambda _=False, m=mag: self._each(lambda v: v.set_magnification(m)))
        sync = self._action(view_menu, "&Synchronise side-by-side views", self._toggle_sync)
        sync.setCheckable(True)
        sync.setChecked(True)
        self._action(view_menu, "&Close second view", self._close_second)
        view_menu.addSeparator()
        self.pixel_size_action = self._action(view_menu, "Set &pixel size…", lambda: self.ask_pixel_size())
        self.pixel_size_action.setToolTip("Declare the µm per pixel of a slide that records none "
                                          "(scale bar, magnification and measurements use it)")
        self.pixel_size_action.setEnabled(False)

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _each(self, fn) -> None:
        if self.views:
            fn(self.views[0])

    def _toggle_sync(self, checked: bool) -> None:
        self.sync_views = checked

    # -- opening ------------------------------------------------------------------------------
    def open_dialog(self, beside: bool = False) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open slide", str(self._last_folder()),
                                              "Slides (*.svs *.ndpi *.mrxs *.scn *.bif *.tif *.tiff *.dcm *.vms *.png *.jpg);;All files (*)")
        if path:
            self.open_path(path, beside=beside)

    def browse_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Browse slides", str(self._last_folder()))
        if folder:
            self.browse(Path(folder))

    def browse(self, folder: Path) -> None:
        self.browser.set_folder(folder)
        self.browser_dock.show()

    def _last_folder(self) -> Path:
        recent = self.recent_files()
        return Path(recent[0]).parent if recent else Path.home()

    def open_path(self, path: str, beside: bool = False) -> SlideView | None:
        """Open a slide; on failure show one clear dialog and keep what was open."""
        try:
            slide = open_declared(path, self.analysis.workspace)  # a pixel size declared earlier holds
        except PathviewError as exc:
            self.show_error("Cannot open slide", str(exc))
            return None
        view = self._make_view(slide)
        if not beside or not self.views:
            for old in self.views:
                old.shutdown()
                old.setParent(None)
                old.slide.close()
            self.views = []
            self.placeholder.hide()
        elif len(self.views) == 2:
            old = self.views.pop()
            old.shutdown()
            old.setParent(None)
        self.views.append(view)
        self.splitter.addWidget(view)
        if len(self.views) == 1:
            self._show_main_panels()
        view.setFocus()
        self._add_recent(path)
        if slide.info.mpp_source == "user":
            self.statusBar().showMessage(f"{slide.mpp:g} µm/px: the pixel size declared for this slide "
                                         "(View › Set pixel size… changes it)", 8000)
        self._slide_shown(view)
        return view

    def _make_view(self, slide: Slide, start: Viewport | None = None) -> SlideView:
        view = SlideView(slide, self.cache_bytes, start=start)
        view.cursor_moved.connect(lambda x, y, src=view: self._show_position(src, x, y))
        view.view_changed.connect(lambda v, src=view: self._on_view_changed(src, v))
        return view

    def _show_main_panels(self) -> None:
        self.overview_dock.setWidget(OverviewWidget(self.views[0]))
        self.info_dock.setWidget(scrollable(InfoPanel(self.views[0].slide)))

    def _slide_shown(self, view: SlideView, replacing: SlideView | None = None) -> None:
        self.setWindowTitle(" | ".join(Path(v.slide.path).name for v in self.views) + " — pathview")
        self.status_position.clear()  # the cursor's last place was on the slide shown before
        self.pixel_size_action.setEnabled(self.views[0].slide.info.mpp_source != "slide")
        if replacing is None:
            self.slide_opened.emit(view)
        else:
            self.view_replaced.emit(replacing, view)

    # -- pixel size ---------------------------------------------------------------------------
    def ask_pixel_size(self, needed_for: str = "the scale bar, magnification and measurements in µm need",
                       then: Callable[[], object] | None = None) -> PixelSizeDialog | None:
        """Ask (without blocking) for the main slide's pixel size; once declared, use it, then call ``then``."""
        if not self.views:
            return None
        slide = self.views[0].slide
        declared = slide.mpp if slide.info.mpp_source == "user" else None
        dialog = PixelSizeDialog(Path(slide.path).name, self, needed_for, declared)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def declare(mpp: float) -> None:
            if self.declare_pixel_size(mpp) and then is not None:
                then()

        dialog.chosen.connect(declare)
        dialog.open()
        return dialog

    def declare_pixel_size(self, mpp: float) -> bool:
        """Use ``mpp`` µm/px for the main view's slide from now on, and remember it for the slide.

        The core fixes a slide's pixel size when it opens, so each view of the slide is
        reopened with it, showing the same field; features carry their state (undo history,
        selection, the assistant's conversation) over through ``view_replaced``.
        Returns False (after saying why) when the slide cannot be reopened; nothing changes then.
        """
        quickhash = self.views[0].slide.quickhash
        fresh: dict[int, Slide] = {}
        try:
            for i, old in enumerate(self.views):
                if old.slide.quickhash == quickhash:
                    fresh[i] = open_slide(old.slide.path, mpp=mpp)
        except PathviewError as exc:
            for slide in fresh.values():
                slide.close()
            self.show_error("Cannot use the pixel size", str(exc))
            return False
        try:
            self.pixel_sizes.remember(quickhash, mpp)
        except OSError as exc:
            self.show_error("Cannot remember the pixel size", f"{self.pixel_sizes.path(quickhash)}: "
                            f"{exc.strerror or exc}\nIt applies until the slide closes.")
        replaced: dict[int, SlideView] = {}
        for i, slide in fresh.items():
            replaced[i] = self.views[i]
            self.views[i] = self._make_view(slide, start=replaced[i].view)
            self.splitter.replaceWidget(self.splitter.indexOf(replaced[i]), self.views[i])
        self._show_main_panels()
        for i, old in replaced.items():
            self._slide_shown(self.views[i], replacing=old)
            old.shutdown()
            old.setParent(None)
            old.slide.close()
        self.views[0].setFocus()
        self.statusBar().showMessage(f"Pixel size {mpp:g} µm/px declared for {Path(self.views[0].slide.path).name}",
                                     8000)
        return True

    def show_error(self, title: str, message: str) -> QMessageBox:
        """Show an error without blocking: the window stays usable behind it."""
        box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # messages quote file contents and servers: never HTML
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def _close_second(self) -> None:
        if len(self.views) == 2:
            old = self.views.pop()
            old.shutdown()
            old.setParent(None)

    # -- synchronised navigation --------------------------------------------------------------
    def _on_view_changed(self, source: SlideView, view: Viewport) -> None:
        info = source.slide.info
        declared = " (user)" if info.mpp_source == "user" else ""
        scale = (f"{info.mpp:.4g} µm/px{declared}" if info.mpp else
                 "no mpp" if info.objective_power else "no mpp or objective: magnification assumes a 40x scan")
        self.status_view.setText(f"{source.magnification:.3g}x · {scale}")
        if not self.sync_views or self._syncing or len(self.views) < 2:
            return
        self._syncing = True
        try:
            for other in self.views:
                if other is not source:
                    # Same physical field: same centre, same magnification.
                    other.center_on(view.cx, view.cy)
                    other.set_magnification(source.magnification)
        finally:
            self._syncing = False

    def _show_position(self, source: SlideView, x: float, y: float) -> None:
        mpp = source.slide.mpp
        text = f"x {x:.0f}, y {y:.0f} px"
        if mpp:
            text += f"  ({x * mpp:.1f}, {y * mpp:.1f} µm)"
        self.status_position.setText(text)

    # -- recent files, drag and drop ----------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _add_recent(self, path: str) -> None:
        recent = [str(Path(path).resolve())] + [p for p in self.recent_files() if p != str(Path(path).resolve())]
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.recent_files():
            self._action(self.recent_menu, p, lambda _=False, path=p: self.open_path(path))

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        for i, p in enumerate(paths[:2]):
            if Path(p).is_dir() and not any(Path(p).glob("*.dcm")):
                self.browse(Path(p))
            else:
                self.open_path(p, beside=i > 0)

    def closeEvent(self, event) -> None:
        for v in self.views:
            v.shutdown()
        self.browser.shutdown()
        self.assistant.shutdown()
        self.annotations.controller.shutdown()
        self.analysis.shutdown()
        super().closeEvent(event)
