"""Put annotations into the main window: the Annotations menu, the tool bar, the Findings dock,
import/export dialogs, and the link from a selected annotation to the assistant.

The keys follow QuPath: R rectangle, E ellipse, P polygon, B brush, ``.`` points,
L line, S select, A shows/hides annotations, Esc back to navigation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QFileDialog, QLabel, QMessageBox, QToolBar

from ..errors import PathviewError
from ..wording import count
from ..workspace import Workspace
from .annotation_controller import AnnotationController
from .class_editor import ClassEditor, class_icon
from .findings_panel import FindingsPanel

#: (tool name, menu text, key).
TOOLS = (
    ("select", "&Select / move / edit", "S"),
    ("rectangle", "&Rectangle", "R"),
    ("ellipse", "&Ellipse", "E"),
    ("polygon", "&Polygon", "P"),
    ("brush", "&Brush", "B"),
    ("point", "Poi&nts", "."),
    ("line", "&Line / ruler", "L"),
)
#: Export formats: file-dialog filter -> (format, suffix).
EXPORTS = {
    "QuPath GeoJSON (*.geojson)": ("geojson", ".geojson"),
    "ASAP XML (*.xml)": ("asap", ".xml"),
    "Aperio ImageScope XML (*.xml)": ("imagescope", ".xml"),
    "CSV measurements (*.csv)": ("csv", ".csv"),
    "PDF report (*.pdf)": ("pdf", ".pdf"),
    "HTML report (*.html)": ("html", ".html"),
}


class _Job(QObject):
    """Run ``work`` on a thread; ``done(result)`` or ``failed(message)`` arrive on the GUI thread."""

    done = Signal(object)
    failed = Signal(str)

    def start(self, work: Callable[[], object]) -> None:
        def run() -> None:
            try:
                self.done.emit(work())
            except PathviewError as exc:
                self.failed.emit(str(exc))
            except Exception as exc:  # noqa: BLE001 - a job always ends in a final state, never "busy" forever
                self.failed.emit(f"unexpected error: {type(exc).__name__}: {exc}")

        threading.Thread(target=run, name="pathview-annotation-job", daemon=True).start()


class AnnotationMenu(QObject):
    """The window's annotation face: menu, tool bar, Findings dock and dialogs around one controller."""

    def __init__(self, window, workspace: str | Path | None = None) -> None:
        super().__init__(window)
        self.window = window
        ws = Workspace.at(workspace) if workspace is not None else None
        self.controller = ctl = AnnotationController(window, ws)
        self.panel = FindingsPanel(ctl)
        self.dock = window._dock("Findings", Qt.DockWidgetArea.LeftDockWidgetArea, self.panel)
        self.jobs: set[_Job] = set()
        self._build_menu()
        self._build_toolbar()
        window.slide_opened.connect(ctl.attach)
        window.slide_opened.connect(lambda _view: self._share_store())
        ctl.message.connect(lambda text: window.statusBar().showMessage(text, 6000))
        ctl.tool_changed.connect(self._show_tool)
        ctl.classes_changed.connect(self._fill_classes)
        self._link_assistant()

    # -- menu and tool bar ----------------------------------------------------------------------
    def _build_menu(self) -> None:
        w, ctl = self.window, self.controller
        menu = w.menuBar().addMenu("&Annotations")
        self.tool_actions: dict[str, QAction] = {}
        group = QActionGroup(self)  # exclusive: pressing R twice keeps the rectangle tool
        for name, text, key in (("", "&Navigate (Esc)", None), *TOOLS):
            action = w._action(menu, text, lambda _=False, n=name: ctl.set_tool(n), key)
            action.setCheckable(True)
            group.addAction(action)
            self.tool_actions[name] = action
        self.tool_actions[""].setChecked(True)
        menu.addSeparator()
        self.show_action = w._action(menu, "Show &annotations", lambda on: ctl.set_visible(on), "A")
        self.show_action.setCheckable(True)
        self.show_action.setChecked(True)
        self.undo_action = w._action(menu, "&Undo", ctl.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = w._action(menu, "&Redo", ctl.redo)
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.delete_action = w._action(menu, "&Delete selected", ctl.delete_selected, QKeySequence.StandardKey.Delete)
        menu.addSeparator()
        w._action(menu, "&Classes…", self.edit_classes)
        w._action(menu, "&Import…", self.import_dialog, "Ctrl+I")
        w._action(menu, "E&xport…", self.export_dialog, "Ctrl+E")

    def _build_toolbar(self) -> None:
        bar = QToolBar("Annotation tools", self.window)
        bar.setObjectName("Annotation tools")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for name, _text, key in (("", "", "Esc"), *TOOLS):
            action = self.tool_actions[name]
            action.setIconText(f"{(name or 'navigate').capitalize()} ({key})")
            bar.addAction(action)
        bar.addSeparator()
        bar.addWidget(QLabel(" New: "))
        self.class_box = QComboBox()
        self.class_box.setToolTip("Class given to new annotations")
        self.class_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.class_box.currentIndexChanged.connect(
            lambda _i: self.controller.set_current_class(self.class_box.currentData()))
        bar.addWidget(self.class_box)
        self.window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.toolbar = bar

    def _fill_classes(self) -> None:
        try:
            classes = self.controller.store.classes()
        except PathviewError:
            return
        current = self.class_box.currentData()
        self.class_box.blockSignals(True)
        self.class_box.clear()
        self.class_box.addItem("Unclassified", None)
        for c in classes:
            self.class_box.addItem(class_icon(c.color), c.name, c.name)
        index = self.class_box.findData(current)
        self.class_box.setCurrentIndex(max(index, 0))
        self.class_box.blockSignals(False)
        self.controller.set_current_class(self.class_box.currentData())

    def _show_tool(self, name: str) -> None:
        for n, action in self.tool_actions.items():
            action.setChecked(n == name)
        self.window.statusBar().showMessage(f"Tool: {name}" if name else "Navigation", 3000)

    def _share_store(self) -> None:
        try:
            store = self.controller.store
        except PathviewError:
            return
        chat = getattr(self.window, "assistant", None)
        if chat is not None and hasattr(chat, "set_store"):
            chat.set_store(store)
        if self.class_box.count() == 0:
            self._fill_classes()

    # -- the assistant --------------------------------------------------------------------------
    def _link_assistant(self) -> None:
        """A selected annotation becomes the assistant's region (when the assistant panel is there)."""
        chat = getattr(self.window, "assistant", None)
        if chat is None or not hasattr(chat, "set_region"):
            return

        def follow(selection: list) -> None:
            if not chat.isVisible():
                return  # the assistant is closed or tabbed away: no region box over the slide
            if len(selection) == 1:
                x0, y0, x1, y1 = selection[0].bounds
                pad = 128 if x1 - x0 < 64 or y1 - y0 < 64 else 0  # a point: ask about the field around it
                chat.set_region((x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad),
                                annotation_id=selection[0].id)
            elif not selection and hasattr(chat, "use_current_view"):
                chat.use_current_view()

        self.controller.selection_changed.connect(follow)

    # -- dialogs --------------------------------------------------------------------------------
    def edit_classes(self) -> None:
        try:
            store = self.controller.store
        except PathviewError as exc:
            self.window.show_error("Classes are not available", str(exc))
            return
        dialog = ClassEditor(store, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def import_dialog(self) -> None:
        if self.controller.view is None:
            self.window.show_error("No slide open", "Open a slide first: annotations belong to a slide.")
            return
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Import annotations", "",
                                                "Annotations (*.geojson *.json *.xml);;All files (*)")
        if paths:
            self.import_files(paths)

    def import_files(self, paths: list[str]) -> _Job:
        """Import annotation files into the slide in view, off the GUI thread (one transaction, one undo step)."""
        from ..findings.interchange import import_files

        store, info, history = self.controller.store, self.controller.view.slide.info, self.controller.history
        job = self._job(lambda: import_files(store, info, paths), lambda report: self._imported(report, history),
                        lambda msg: self.window.show_error("Import failed: nothing was added", msg))
        self.window.statusBar().showMessage(f"Importing {count(len(paths), 'file')}…")
        return job

    def _imported(self, report, history) -> None:
        imported = count(report.count, "annotation")
        history.record_added(report.annotations, f"import of {imported}", report.classes_added)
        undo = " (Ctrl+Z undoes the import)" if report.annotations else ""
        self.window.statusBar().showMessage(f"Imported {imported}{undo}.", 8000)
        if report.warnings:
            box = QMessageBox(QMessageBox.Icon.Warning, "Imported, with warnings",
                              f"Imported {imported}.\n\n" + "\n".join(report.warnings[:20]),
                              QMessageBox.StandardButton.Ok, self.window)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    def export_dialog(self) -> None:
        view = self.controller.view
        if view is None:
            self.window.show_error("No slide open", "Open a slide first.")
            return
        stem = Path(view.slide.path).stem
        path, chosen = QFileDialog.getSaveFileName(self.window, "Export annotations", f"{stem}-annotations",
                                                   ";;".join(EXPORTS))
        if path:
            fmt, suffix = EXPORTS.get(chosen, ("geojson", ".geojson"))
            self.export(path if Path(path).suffix else path + suffix, fmt)

    def export(self, path: str, fmt: str) -> _Job:
        """Write the slide's annotations (or the report) to ``path`` off the GUI thread."""
        from ..findings.interchange import export_annotations

        store, slide = self.controller.store, self.controller.view.slide

        def done(warnings: list[str]) -> None:
            note = f" ({'; '.join(warnings)})" if warnings else ""
            self.window.statusBar().showMessage(f"Wrote {path}{note}", 10000)

        self.window.statusBar().showMessage(f"Writing {Path(path).name}…")
        return self._job(lambda: export_annotations(store, slide, fmt, path), done,
                         lambda msg: self.window.show_error("Export failed", msg))

    def _job(self, work: Callable[[], object], done: Callable, failed: Callable[[str], None]) -> _Job:
        job = _Job(self)
        self.jobs.add(job)
        job.done.connect(done)
        job.failed.connect(failed)
        job.done.connect(lambda _r, j=job: self.jobs.discard(j))
        job.failed.connect(lambda _m, j=job: self.jobs.discard(j))
        job.start(work)
        return job
