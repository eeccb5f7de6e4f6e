"""The annotation controller: one place that owns the tools, the selection and undo for the slide in view.

Every edit goes through the core :class:`~pathview.findings.History`, which saves it in
the store at once; the store's change events (from any thread: an import, the
assistant filing an answer) come back here on the GUI thread and update the in-memory
scene, the layer's tiles and the findings panel. Nothing the user finished drawing
exists only in memory.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QObject, Qt, Signal

from ..errors import PathviewError
from ..findings import Annotation, FindingsStore, History, StoreEvent
from ..findings.model import UNCLASSIFIED_COLOR
from ..viewport import downsample_for
from ..wording import count
from ..workspace import Workspace
from .annotation_layer import AnnotationLayer
from .annotation_scene import AnnotationScene
from .annotation_select import SelectTool
from .annotation_tools import BrushTool, DragShapeTool, PointTool, PolygonTool
from .slide_view import SlideView

#: Store events touching more annotations than this reload the scene on a worker thread.
BULK = 1000
#: Navigating to an annotation never zooms in beyond this magnification.
MAX_NAVIGATE_MAGNIFICATION = 40.0


@dataclass
class SlideState:
    """What the controller keeps per open slide view."""

    view: SlideView
    quickhash: str
    scene: AnnotationScene
    layer: AnnotationLayer
    history: History
    selected: list[str] = field(default_factory=list)


class AnnotationController(QObject):
    """Emits ``selection_changed(list[Annotation])``, ``annotations_changed()`` (the scene changed),
    ``classes_changed()``, ``tool_changed(name)`` ('' for navigation) and ``message(text)`` for the status bar."""

    selection_changed = Signal(list)
    annotations_changed = Signal()
    classes_changed = Signal()
    tool_changed = Signal(str)
    message = Signal(str)
    _store_event = Signal(object)
    _reloaded = Signal(object, object)

    def __init__(self, window, workspace: Workspace | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.workspace = workspace
        self._store: FindingsStore | None = None
        self._colors: dict[str, tuple[int, int, int]] = {}
        self.states: dict[SlideView, SlideState] = {}
        self.state: SlideState | None = None
        self.space_down = False
        self.current_class: str | None = None
        self.tools = {
            "rectangle": DragShapeTool(self, "rectangle"), "ellipse": DragShapeTool(self, "ellipse"),
            "polygon": PolygonTool(self), "brush": BrushTool(self), "point": PointTool(self),
            "line": DragShapeTool(self, "line"), "select": SelectTool(self),
        }
        self.tool_name = ""
        #: While ``annotations_changed`` is emitted: (action, ids) when just these were added,
        #: updated or removed (listeners may touch only them); None: anything may have changed.
        self.last_change: tuple[str, tuple[str, ...]] | None = None
        self._store_event.connect(self._on_store_event)
        self._reloaded.connect(self._on_reloaded)

    # -- store ----------------------------------------------------------------------------------
    @property
    def store(self) -> FindingsStore:
        """The workspace's findings store, opened on first use (raises PathviewError if it cannot be)."""
        if self._store is None:
            self._store = FindingsStore.open(self.workspace)
            self._store.subscribe(self._store_event.emit)  # emitted on any thread, handled on the GUI thread
            self._colors = self._store.class_colors()
        return self._store

    def class_colors(self) -> dict[str, tuple[int, int, int]]:
        return self._colors

    def new_color(self) -> tuple[int, int, int]:
        """The colour of what is being drawn: the class new annotations get."""
        return self._colors.get(self.current_class, UNCLASSIFIED_COLOR) if self.current_class else UNCLASSIFIED_COLOR

    # -- slides ---------------------------------------------------------------------------------
    def attach(self, view: SlideView) -> None:
        """Show a newly opened slide's annotations and make it the one the tools act on."""
        try:
            store = self.store
            annotations = store.annotations(view.slide.quickhash)
        except PathviewError as exc:
            self.window.show_error("Annotations are not available", str(exc))
            return
        scene = AnnotationScene(annotations)
        layer = AnnotationLayer(view, scene)
        layer.mpp = view.slide.mpp
        layer.set_class_colors(self._colors)
        view.add_layer(layer)
        open_views = getattr(self.window, "views", [view])
        self.states = {v: s for v, s in self.states.items() if v in open_views}
        self.states[view] = SlideState(view, view.slide.quickhash, scene, layer, History(store, view.slide.quickhash))
        view.installEventFilter(self)
        self._activate(view)

    def replace_view(self, old: SlideView, new: SlideView) -> None:
        """Carry the slide's annotations, undo history and selection over to ``new``, which now shows it."""
        state = self.states.pop(old, None)
        if state is None:  # its annotations were not available: try again
            self.attach(new)
            return
        old.removeEventFilter(self)
        old.remove_layer(state.layer)
        state.view = state.layer.widget = new
        state.layer.mpp = new.slide.mpp  # lengths and areas are drawn in µm from now on
        state.layer.invalidate()
        new.add_layer(state.layer)
        self.states[new] = state
        new.installEventFilter(self)
        if state is self.state:
            self._activate(new)  # the tool moves over; the panels measure anew

    def _activate(self, view: SlideView) -> None:
        old = self.state
        if old is not None and old.view is not view:
            old.view.set_tool(None)
            old.layer.tool = None
        self.state = self.states[view]
        self.set_tool(self.tool_name)
        self.annotations_changed.emit()
        self.selection_changed.emit(self.selected())

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and event.key() == Qt.Key.Key_Space \
                and not event.isAutoRepeat():
            self.space_down = kind == QEvent.Type.KeyPress
        elif kind == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape and obj in self.states:
            self.escape()
            return True
        elif kind == QEvent.Type.FocusIn and obj in self.states and (self.state is None or obj is not self.state.view):
            self._activate(obj)
        return False

    @property
    def view(self) -> SlideView | None:
        return self.state.view if self.state else None

    @property
    def scene(self) -> AnnotationScene:
        return self.state.scene if self.state else AnnotationScene()

    @property
    def layer(self) -> AnnotationLayer | None:
        return self.state.layer if self.state else None

    @property
    def history(self) -> History | None:
        return self.state.history if self.state else None

    @property
    def mpp(self) -> float | None:
        return self.state.view.slide.mpp if self.state else None

    # -- edits ----------------------------------------------------------------------------------
    def create(self, kind: str, geometry) -> Annotation | None:
        """Save a new annotation of the current class, select it, and return it."""
        ann = Annotation(geometry, kind=kind, class_name=self.current_class)
        if self._edit(lambda h: h.add(ann)):
            self.select([ann.id])
            self.say(f"Saved {kind}.")
            return ann
        return None

    def update(self, annotations: list[Annotation], label: str = "edit") -> bool:
        return self._edit(lambda h: h.update_many(annotations, label))

    def _edit(self, apply: Callable[[History], object]) -> bool:
        if self.state is None:
            return False
        try:
            apply(self.state.history)
        except PathviewError as exc:
            self.window.show_error("The change was not saved", str(exc))
            return False
        return True

    def delete_selected(self) -> None:
        chosen = self.selected()
        locked = [a for a in chosen if a.locked]
        free = [a.id for a in chosen if not a.locked]
        if free:
            self._edit(lambda h: h.remove(free, "delete"))
        if locked:
            self.say(f"{len(locked)} locked annotation{'s are' if len(locked) > 1 else ' is'} kept: "
                     "unlock in the Findings panel to delete.")
        elif free:
            self.say(f"Deleted {count(len(free), 'annotation')} (Ctrl+Z brings back).")

    def undo(self) -> None:
        self._undo_redo(undo=True)

    def redo(self) -> None:
        self._undo_redo(undo=False)

    def _undo_redo(self, undo: bool) -> None:
        if self.state is None:
            return
        tool = self.tools.get(self.tool_name)
        if tool is not None and tool.busy:
            tool.cancel()
        h = self.state.history
        step = None
        try:
            step = h.undo() if undo else h.redo()
        except PathviewError as exc:
            self.window.show_error("Undo failed" if undo else "Redo failed", str(exc))
        if step is not None:
            self.say(f"{'Undid' if undo else 'Redid'} {step.label}.")
        else:
            self.say(f"Nothing to {'undo' if undo else 'redo'}.")

    # -- selection ------------------------------------------------------------------------------
    def select(self, ids: list[str]) -> None:
        if self.state is None:
            return
        ids = list(dict.fromkeys(i for i in ids if i in self.state.scene))
        if ids == self.state.selected:
            return
        self.state.selected = self.state.layer.selected = ids
        self.state.view.update()
        self.selection_changed.emit(self.selected())

    def selected(self) -> list[Annotation]:
        if self.state is None:
            return []
        return [a for a in map(self.state.scene.get, self.state.selected) if a is not None]

    def navigate_to(self, annotation: Annotation) -> None:
        """Centre the view on the annotation, zoomed so that all of it shows with a margin."""
        view = self.view
        if view is None:
            return
        info = view.slide.info
        closest = downsample_for(MAX_NAVIGATE_MAGNIFICATION, info.mpp, info.objective_power) * view.devicePixelRatioF()
        if annotation.geometry.geom_type == "Point":  # nothing to fit: keep the zoom
            closest = max(closest, view.view.downsample)
        view.set_view(view.view.framing(annotation.bounds, margin=1.4, closest=closest))

    # -- tools and display ----------------------------------------------------------------------
    def set_tool(self, name: str | None) -> None:
        """Switch to a tool by name; '' or None is plain navigation."""
        name = name or ""
        old = self.tools.get(self.tool_name)
        if old is not None and old is not self.tools.get(name):
            old.cancel()
        self.tool_name = name
        if self.state is not None:
            tool = self.tools.get(name)
            self.state.layer.tool = tool
            self.state.view.set_tool(tool)
            if tool is not None:
                self.state.view.setCursor(tool.cursor)
        self.tool_changed.emit(name)

    def escape(self) -> None:
        """Esc: drop the shape being drawn; else clear the selection; else back to navigation."""
        tool = self.tools.get(self.tool_name)
        if tool is not None and tool.busy:
            tool.cancel()
            if self.view is not None:
                self.view.update()
        elif self.state is not None and self.state.selected:
            self.select([])
        else:
            self.set_tool(None)

    def set_visible(self, visible: bool) -> None:
        for state in self.states.values():
            state.layer.visible = visible
            state.view.update()
        self.say("Annotations shown." if visible else "Annotations hidden (A shows them).")

    @property
    def visible(self) -> bool:
        return self.state.layer.visible if self.state else True

    def set_current_class(self, name: str | None) -> None:
        self.current_class = name or None

    def layer_hide(self, ids: list[str]) -> None:
        if self.state is not None:
            self.state.layer.set_hidden(ids)

    def say(self, text: str) -> None:
        self.message.emit(text)

    # -- store events ---------------------------------------------------------------------------
    def _on_store_event(self, event: StoreEvent) -> None:
        if event.action == "classes":
            old, self._colors = self._colors, self.store.class_colors()
            for state in self.states.values():
                state.layer.set_class_colors(self._colors)
                if set(old) - set(self._colors):  # a class renamed or removed: its annotations changed
                    self._reload(state)
            self.classes_changed.emit()
            return
        for state in [s for s in self.states.values() if s.quickhash == event.quickhash]:
            self._apply(state, event)

    def _apply(self, state: SlideState, event: StoreEvent) -> None:
        scene = state.scene
        if len(event.ids) > BULK and event.action != "removed":
            self._reload(state)
            return
        before = [a.bounds for a in map(scene.get, event.ids) if a is not None]
        if event.action == "removed":
            scene.drop(event.ids)
            after = []
        else:
            fresh = []
            for aid in event.ids:
                try:
                    fresh.append(self.store.get(state.quickhash, aid))
                except PathviewError:
                    continue  # removed again meanwhile: its own event follows
            scene.put(fresh)
            after = [a.bounds for a in fresh]
        state.layer.invalidate(before + after)
        self._changed(state, (event.action, tuple(event.ids)))

    def _changed(self, state: SlideState, change: tuple[str, tuple[str, ...]] | None = None) -> None:
        if state is not self.state:
            return
        kept = [i for i in state.selected if i in state.scene]
        if kept != state.selected:
            state.selected = state.layer.selected = kept
        self.last_change = change
        self.annotations_changed.emit()
        self.last_change = None
        self.selection_changed.emit(self.selected())

    def _reload(self, state: SlideState) -> None:
        """Read the slide's annotations again off the GUI thread (after an import of thousands)."""
        self.say("Loading annotations…")

        def work() -> None:
            try:
                self._reloaded.emit(state, self.store.annotations(state.quickhash))
            except (PathviewError, sqlite3.Error) as exc:  # e.g. the window closed the store meanwhile
                self.message.emit(f"Could not reload annotations: {exc}")

        threading.Thread(target=work, name="pathview-annotations-reload", daemon=True).start()

    def _on_reloaded(self, state: SlideState, annotations: list) -> None:
        state.scene.reset(annotations)
        state.layer.invalidate()
        self._changed(state)
        self.say(f"{count(len(annotations), 'annotation')}.")

    def shutdown(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
