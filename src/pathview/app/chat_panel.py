"""The Assistant dock: ask a local vision-language model about the current view or a selected region.

Answers stream in token by token from a worker thread (the window never waits); Stop
ends an answer within a second; follow-up questions keep the conversation. Every answer
shows its region (Go to region centres the slide on it), the model, and an
AI-generated / not-a-diagnosis mark; model text is only ever shown as plain text. With
no model installed the panel says what to install where.
"""

from __future__ import annotations

import atexit
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..assistant import Annotation, AssistantModel, Backend, ChatSession, Turn, create_backend, find_models
from ..assistant.discovery import install_folder
from ..assistant.errors import install_hint
from ..assistant.scores import find_tiles_h5
from ..errors import PathviewError
from .assistant_turn import RegionLayer, TurnWidget
from .assistant_worker import AssistantWorker
from .slide_view import SlideView

#: Longest answer in tokens (a paragraph or two; Stop ends it sooner).
MAX_NEW_TOKENS = 512

#: Model processes by model folder: loaded once per viewer run, shared by its windows, ended at exit.
_HOSTS: dict[Path, Backend] = {}


def local_backend(model: AssistantModel) -> Backend:
    """Return the model's backend: a child process, so the window never waits on Python's lock."""
    if model.path not in _HOSTS:
        _HOSTS[model.path] = create_backend("process", model=model)
    return _HOSTS[model.path]


@atexit.register
def _end_hosts() -> None:
    for host in _HOSTS.values():
        host.close()


class ChatPanel(QWidget):
    """Emits ``finding_saved(annotation_id)`` after an answer is filed in the findings store."""

    finding_saved = Signal(str)

    def __init__(self, parent: QWidget | None = None, max_new_tokens: int = MAX_NEW_TOKENS) -> None:
        super().__init__(parent)
        self.view: SlideView | None = None
        self.session: ChatSession | None = None
        self.backend: Backend | None = None
        self.max_new_tokens = max_new_tokens
        self.region: tuple[int, int, int, int] | None = None
        self.annotation: Annotation | None = None
        self.turn_widgets: dict[int, TurnWidget] = {}
        self.layer = RegionLayer()
        self.worker = AssistantWorker(self)
        self.worker.load_progress.connect(self._on_progress)
        self.worker.loaded.connect(self._on_loaded)
        self.worker.load_failed.connect(self._on_failed)
        self.worker.turn_started.connect(self._on_turn_started)
        self.worker.piece.connect(self._on_piece)
        self.worker.turn_finished.connect(self._on_turn_finished)
        self.worker.idle.connect(lambda: self._busy(False))
        self.worker.saved.connect(self._on_saved)
        self.worker.save_failed.connect(self._on_save_failed)
        self._store = None  # the findings store, opened on first use (or given with set_store)
        self._own_store = False
        self._build()
        self.refresh_models()

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        row = QHBoxLayout()
        row.addWidget(QLabel("Model"))
        self.model_box = QComboBox()
        self.model_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_box.setMinimumContentsLength(12)  # long model names must not widen the dock
        self.model_box.currentIndexChanged.connect(self._backend_changed)
        row.addWidget(self.model_box, 1)
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(self.load_model)
        row.addWidget(self.load_button)
        layout.addLayout(row)
        self.server_edit = QLineEdit()
        self.server_edit.setPlaceholderText("or a server on this machine, e.g. http://localhost:11434")
        self.server_edit.editingFinished.connect(self._backend_changed)
        layout.addWidget(self.server_edit)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.hide()
        layout.addWidget(self.progress)
        region_row = QHBoxLayout()
        self.region_label = QLabel("Region: the current view")
        self.region_label.setTextFormat(Qt.TextFormat.PlainText)  # it names the annotation's (imported) class
        self.region_label.setWordWrap(True)
        region_row.addWidget(self.region_label, 1)
        self.view_button = QPushButton("Use current view")
        self.view_button.clicked.connect(self.use_current_view)
        region_row.addWidget(self.view_button)
        layout.addLayout(region_row)
        self.transcript = QWidget()
        self.transcript_layout = QVBoxLayout(self.transcript)
        self.transcript_layout.setContentsMargins(0, 0, 0, 0)
        self.transcript_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.transcript)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Answers wrap to the dock's width; the dock is never narrower than an answer's buttons.
        self.scroll.setMinimumWidth(_actions_width() + self.scroll.verticalScrollBar().sizeHint().width() + 24)
        layout.addWidget(self.scroll, 1)
        self.question_edit = QPlainTextEdit()
        self.question_edit.setPlaceholderText("Ask about the region, e.g. “Is there necrosis?” (Ctrl+Enter)")
        self.question_edit.setMaximumHeight(70)
        layout.addWidget(self.question_edit)
        buttons = QHBoxLayout()
        notice = QLabel("AI-generated answers · not a diagnosis")
        notice.setStyleSheet("color: #a05a00;")
        notice.setWordWrap(True)
        buttons.addWidget(notice, 1)
        self.ask_button = QPushButton("Ask")
        self.ask_button.setShortcut("Ctrl+Return")
        self.ask_button.clicked.connect(lambda: self.ask())
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        buttons.addWidget(self.ask_button)
        buttons.addWidget(self.stop_button)
        layout.addLayout(buttons)

    # -- models ------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """List the installed models; with none, say exactly what to install where."""
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for model in find_models():
            self.model_box.addItem(f"{model.name} ({model.family})", model)
        self.model_box.blockSignals(False)
        self._backend_changed()

    def _backend_changed(self) -> None:
        if self.worker.busy:
            return
        url = self.server_edit.text().strip()
        model = self.model_box.currentData()
        try:
            if url:
                backend = create_backend("openai", url=url)
            elif model is not None:
                backend = local_backend(model)
            else:
                backend = None
        except Exception as exc:  # a refused or malformed server URL: say why, keep the old choice
            self._set_status(str(exc))
            return
        if self.backend is not None and backend is not None and _same(self.backend, backend):
            return
        if self.backend is not None:
            self.backend.close()  # one model in memory at a time; a model process restarts when chosen again
        self.backend = backend
        if self.session is not None and backend is not None:
            self.session.backend = backend  # the conversation goes on with the new model
        self.load_button.setEnabled(backend is not None)
        self.ask_button.setEnabled(backend is not None)
        if backend is None:
            folder = install_folder()
            self._set_status(f"No assistant model installed. Put a vision-language model folder (e.g. medgemma-4b-it, "
                             f"Lingshu-7B, SmolVLM-Instruct) into {folder}/NAME/, or enter a local server above.")
            self.status.setToolTip(install_hint(folder))  # the full instructions, files included
        else:
            self._set_status(f"{backend.model_name}: loads on the first question (or press Load).")

    def load_model(self) -> None:
        if self.backend is not None and self.worker.load(self.backend):
            self._busy(True)

    # -- the slide and the region ---------------------------------------------------------------
    def set_view(self, view: SlideView) -> None:
        """Follow a newly opened slide: a new conversation about it."""
        self.worker.stop()
        if self.view is not None:
            self.view.remove_layer(self.layer)
        self.view = view
        self.session = None
        self.region, self.annotation, self.layer.box = None, None, None
        self.region_label.setText("Region: the current view")
        for widget in self.turn_widgets.values():
            widget.setParent(None)
        self.turn_widgets.clear()
        view.add_layer(self.layer)

    def replace_view(self, old: SlideView, new: SlideView) -> None:
        """Follow the same slide into ``new`` (reopened with a declared pixel size): the conversation,
        a reply being written and the region asked about all go on."""
        if old is not self.view:
            return
        old.remove_layer(self.layer)
        self.view = new
        new.add_layer(self.layer)
        if self.session is not None:
            self.session.slide = new.slide  # the next questions read the slide with its pixel size

    def set_region(self, box: tuple[int, int, int, int], annotation_id: str | int | None = None,
                   classification: str | None = None, note: str | None = None) -> None:
        """Ask about ``box`` (level-0 x, y, w, h), e.g. a selected annotation, instead of the current view."""
        self.region = tuple(int(round(v)) for v in box)
        if annotation_id is not None and classification is None and note is None and self.view is not None:
            classification, note = self._stored_class_and_note(str(annotation_id))
        self.annotation = Annotation(annotation_id, classification, note) if annotation_id is not None or \
            classification or note else None
        x, y, w, h = self.region
        if annotation_id is not None:  # the selected annotation is already highlighted: no second box on it
            self.region_label.setText(f"Region: the selected {classification or 'unclassified'} annotation "
                                      f"({w} × {h} px)")
            self._clear_region()
        else:
            self.region_label.setText(f"Region: x {x}, y {y}, {w} × {h} px")
            self._show_region(self.region)

    def _stored_class_and_note(self, annotation_id: str) -> tuple[str | None, str | None]:
        try:
            ann = self.store.get(self.view.slide.quickhash, annotation_id)
        except (PathviewError, OSError):  # not stored (yet) or no store here: ask without class and note
            return None, None
        return ann.class_name, ann.note or None

    def use_current_view(self) -> None:
        self.region, self.annotation = None, None
        self.region_label.setText("Region: the current view")
        self._clear_region()

    def _clear_region(self) -> None:
        self.layer.box = None
        if self.view is not None:
            self.view.update()

    def current_box(self) -> tuple[int, int, int, int] | None:
        """Return the region to ask about: the set region, else what the view shows."""
        if self.region is not None:
            return self.region
        if self.view is None:
            return None
        v, (sw, sh) = self.view.view, self.view.slide.dimensions
        x0, y0 = max(0, round(v.x0)), max(0, round(v.y0))
        x1, y1 = min(sw, round(v.x0 + v.width * v.downsample)), min(sh, round(v.y0 + v.height * v.downsample))
        return (x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None

    # -- asking --------------------------------------------------------------------------------
    def ask(self, question: str | None = None) -> bool:
        """Ask ``question`` (default: the text typed) about the current region; False when it cannot start."""
        text = (question if question is not None else self.question_edit.toPlainText()).strip()
        box = self.current_box()
        if not text or self.backend is None or box is None or self.view is None:
            if self.view is None:
                self._set_status("Open a slide first.")
            return False
        if self.session is None or self.session.slide is not self.view.slide:
            self.session = ChatSession(self.backend, self.view.slide)
        self.session.tiles_h5 = find_tiles_h5(self._analysis_roots(), self.view.slide.quickhash)  # may be new
        if not self.worker.ask(self.session, text, box, self.annotation, self.max_new_tokens):
            return False
        self.question_edit.clear()
        self._busy(True)
        return True

    def _analysis_roots(self) -> list | None:
        """Where the window's analysis looks for scans (its workspace, folders opened), else the default."""
        analysis = getattr(self.window(), "analysis", None)
        if analysis is None or not hasattr(analysis, "workspace"):
            return None
        return [analysis.workspace, *getattr(analysis, "scan_dirs", [])]

    def stop(self) -> None:
        self.worker.stop()

    def _busy(self, busy: bool) -> None:
        self.ask_button.setEnabled(not busy and self.backend is not None)
        self.load_button.setEnabled(not busy and self.backend is not None)
        self.model_box.setEnabled(not busy)
        self.server_edit.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        if not busy:
            self.progress.hide()

    # -- worker events (GUI thread) ------------------------------------------------------------
    def _set_status(self, text: str) -> None:
        self.status.setText(text)

    def _on_progress(self, stage: str, fraction: float) -> None:
        self.progress.show()
        self.progress.setValue(round(fraction * 100))
        self._set_status(f"Loading: {stage}")

    def _on_loaded(self, name: str) -> None:
        self.progress.hide()
        self._set_status(f"{name} ready.")

    def _on_failed(self, message: str) -> None:
        self._set_status(message)

    def _on_turn_started(self, turn: Turn) -> None:
        if self.session is None or turn not in self.session.turns:
            return  # asked about a slide that has since been closed
        widget = TurnWidget(turn)
        widget.go_to_region.connect(self.go_to)
        widget.save_requested.connect(self.save)
        self.turn_widgets[turn.id] = widget
        self.transcript_layout.insertWidget(self.transcript_layout.count() - 1, widget)
        if turn.annotation is None or turn.annotation.id is None:  # an annotation is highlighted already
            self._show_region(turn.box)
        self._set_status(f"{turn.model} is answering… (Stop ends it)")

    def _on_piece(self, turn_id: int, text: str) -> None:
        widget = self.turn_widgets.get(turn_id)
        if widget is not None:
            widget.append(text)
            bar = self.scroll.verticalScrollBar()
            bar.setValue(bar.maximum())

    def _on_turn_finished(self, turn_id: int, state: str, error: str) -> None:
        widget = self.turn_widgets.get(turn_id)
        if widget is not None:
            widget.finish(state, error)
        self._set_status({"done": "Answer complete.", "stopped": "Stopped."}.get(state, error or state))

    # -- regions on the slide ------------------------------------------------------------------
    def _show_region(self, box: tuple[int, int, int, int]) -> None:
        self.layer.box = box
        if self.view is not None:
            self.view.update()

    def go_to(self, turn: Turn) -> None:
        """Centre the slide on the answer's region, zoomed to show all of it."""
        if self.view is None:
            return
        x, y, w, h = turn.box
        self.view.set_view(self.view.view.framing((x, y, x + w, y + h), margin=1.15))
        self._show_region(turn.box)

    # -- findings ------------------------------------------------------------------------------
    def set_store(self, store) -> None:
        """Share the window's findings store (the annotations panel's), instead of opening one."""
        self._store, self._own_store = store, False

    @property
    def store(self):
        if self._store is None:
            from ..findings import FindingsStore

            self._store, self._own_store = FindingsStore.open(None), True
        return self._store

    def save(self, turn: Turn) -> None:
        """Keep ``turn`` as a finding: under its annotation, or a new "Assistant region" rectangle."""
        if self.view is None:
            return
        widget = self.turn_widgets.get(turn.id)
        if widget is not None:
            widget.save_button.setEnabled(False)
        try:
            store = self.store
        except Exception as exc:  # e.g. the workspace cannot be written: say so beside the answer
            self._on_save_failed(turn.id, str(exc))
            return
        self.worker.save(turn, store, self.view.slide.quickhash)

    def _on_saved(self, turn_id: int, annotation_id: str) -> None:
        widget = self.turn_widgets.get(turn_id)
        if widget is not None:
            widget.mark_saved(annotation_id)
        self._set_status("Saved as a finding: it appears in the exports and the report.")
        self.finding_saved.emit(annotation_id)

    def _on_save_failed(self, turn_id: int, message: str) -> None:
        widget = self.turn_widgets.get(turn_id)
        if widget is not None:
            widget.save_button.setEnabled(True)
        self._set_status(f"Not saved: {message}")

    def shutdown(self) -> None:
        self.worker.shutdown()
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None


def _actions_width() -> int:
    return sum(QPushButton(text).sizeHint().width() for text in ("Go to region", "Save as finding")) + 12


def _same(a: Backend, b: Backend) -> bool:
    return a is b or (type(a) is type(b) and getattr(a, "url", None) == getattr(b, "url", None) is not None)
