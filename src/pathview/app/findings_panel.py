"""The Findings dock: every annotation and AI finding of the slide in a table that stays in step
with the view.

Columns: class (with its colour), the first measurement with its unit (µm when the
slide knows its pixel size, clearly "px" when it does not), name, note, kind, source
and lock. Filter by class; a click centres the slide on the finding; selecting rows selects
in the view and back. Class, name and note are edited in place (double-click), lock with
the check box; each edit is saved at once and undoable.
"""

from __future__ import annotations

from PySide6 import QtGui
from PySide6.QtCore import QAbstractTableModel, QItemSelection, QItemSelectionModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyledItemDelegate,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..errors import PathviewError
from ..findings import Annotation, format_measurement, measure
from ..wording import count
from .annotation_layer import measurement_text
from .class_editor import ClassEditor, class_icon

COLUMNS = ("Class", "Measurement", "Name", "Note", "Kind", "Source", "Lock")
CLASS, MEASUREMENT, NAME, NOTE, KIND, SOURCE, LOCK = range(len(COLUMNS))
ALL = "\x00all"  # filter value: every class
NONE = "\x00none"  # filter value: unclassified ones
UNCLASSIFIED = "Unclassified"


def measurement_cell(annotation: Annotation, mpp: float | None) -> tuple[str, str]:
    """Return the table text ('31,872 µm²') and a tooltip with every measurement."""
    values = measure(annotation, mpp)
    tip = "\n".join(format_measurement(k, v) for k, v in values.items())
    if annotation.measurements:
        tip += "\nImported: " + ", ".join(f"{k} {v:g}" for k, v in list(annotation.measurements.items())[:8])
    return measurement_text(annotation, mpp), tip


class FindingsModel(QAbstractTableModel):
    """The slide's annotations (optionally one class) as table rows, in the order they were added."""

    def __init__(self, controller) -> None:
        super().__init__()
        self.ctl = controller
        self.rows: list[Annotation] = []
        self.row_of: dict[str, int] = {}
        self.class_filter = ALL
        self._measured: dict[tuple[str, float, float | None], tuple[str, str]] = {}
        self._icons: dict[tuple[int, int, int], object] = {}

    def _shown(self, a: Annotation) -> bool:
        wanted = self.class_filter
        return wanted == ALL or a.class_name == (None if wanted == NONE else wanted)

    def apply(self, change: tuple[str, tuple[str, ...]] | None) -> bool:
        """Follow a change to a few annotations row by row (a 100,000-row table is not rebuilt
        for one note); False when the whole table must be refreshed."""
        if change is None or len(change[1]) > 100:
            return False
        action, ids = change
        scene = self.ctl.scene
        if action == "updated":
            fresh = [(self.row_of.get(i), scene.get(i)) for i in ids]
            if any(r is None or a is None or not self._shown(a) for r, a in fresh):
                return False
            for r, a in fresh:
                self.rows[r] = a
                self.dataChanged.emit(self.index(r, 0), self.index(r, len(COLUMNS) - 1))
        elif action == "added":
            new = [a for a in map(scene.get, ids) if a is not None and self._shown(a) and a.id not in self.row_of]
            if new:
                self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(new) - 1)
                self.row_of.update({a.id: len(self.rows) + k for k, a in enumerate(new)})
                self.rows.extend(new)
                self.endInsertRows()
        elif action == "removed":
            for r in sorted((self.row_of[i] for i in ids if i in self.row_of), reverse=True):
                self.beginRemoveRows(QModelIndex(), r, r)
                del self.rows[r]
                self.endRemoveRows()
            self.row_of = {a.id: i for i, a in enumerate(self.rows)}
        else:
            return False
        return True

    def refresh(self) -> None:
        rows = [a for a in self.ctl.scene if self._shown(a)]
        if [a.id for a in rows] == [a.id for a in self.rows]:
            self.rows = rows
            if rows:
                self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, len(COLUMNS) - 1))
            return
        self.beginResetModel()
        self.rows = rows
        self.row_of = {a.id: i for i, a in enumerate(rows)}
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def _measurement(self, a: Annotation) -> tuple[str, str]:
        key = (a.id, a.modified, self.ctl.mpp)  # a pixel size declared later changes every measurement
        if key not in self._measured:
            self._measured[key] = measurement_cell(a, self.ctl.mpp)
        return self._measured[key]

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        a, col = self.rows[index.row()], index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if col == CLASS:
                return a.class_name or UNCLASSIFIED
            if col == NAME:
                return a.name
            if col == KIND:
                return a.kind if a.object_type == "annotation" else f"{a.kind} ({a.object_type})"
            if col == MEASUREMENT:
                return self._measurement(a)[0]
            if col == NOTE:
                return a.note if role == Qt.ItemDataRole.EditRole else a.note.replace("\n", " ")
            if col == SOURCE:
                return a.source
            return None
        if role == Qt.ItemDataRole.DecorationRole and col == CLASS:
            rgb = a.display_color(self.ctl.class_colors())
            if rgb not in self._icons:
                self._icons[rgb] = class_icon(rgb)
            return self._icons[rgb]
        if role == Qt.ItemDataRole.CheckStateRole and col == LOCK:
            return Qt.CheckState.Checked if a.locked else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == MEASUREMENT:
                return self._measurement(a)[1]
            if col == NOTE:  # a tooltip that looks like HTML is shown as HTML: escape the note
                return QtGui.Qt.convertFromPlainText(a.note) if a.note else None
            if col == LOCK:
                return "Locked: cannot be moved, reshaped or deleted" if a.locked else "Lock against changes"
        return None

    def flags(self, index):
        base = super().flags(index)
        if index.column() in (CLASS, NAME, NOTE):
            return base | Qt.ItemFlag.ItemIsEditable
        if index.column() == LOCK:
            return base | Qt.ItemFlag.ItemIsUserCheckable
        return base

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid():
            return False
        a, col = self.rows[index.row()], index.column()
        if col == LOCK and role == Qt.ItemDataRole.CheckStateRole:
            locked = Qt.CheckState(value) == Qt.CheckState.Checked
            return self.ctl.update([a.with_(locked=locked)], "lock" if locked else "unlock")
        if role != Qt.ItemDataRole.EditRole:
            return False
        if col == CLASS:
            new = a.with_(class_name=value or None)
        elif col == NAME:
            new = a.with_(name=str(value).strip())
        elif col == NOTE:
            new = a.with_(note=str(value))
        else:
            return False
        return self.ctl.update([new], f"edit {COLUMNS[col].lower()}")


class ClassDelegate(QStyledItemDelegate):
    """Edit the class with a list of the defined classes."""

    def __init__(self, controller, parent=None) -> None:
        super().__init__(parent)
        self.ctl = controller

    def createEditor(self, parent, option, index):
        box = QComboBox(parent)
        box.addItem(UNCLASSIFIED, None)
        for c in self.ctl.store.classes():
            box.addItem(class_icon(c.color), c.name, c.name)
        return box

    def setEditorData(self, editor, index) -> None:
        editor.setCurrentIndex(max(0, editor.findText(index.data())))

    def setModelData(self, editor, model, index) -> None:
        model.setData(index, editor.currentData(), Qt.ItemDataRole.EditRole)


class FindingsPanel(QWidget):
    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctl = controller
        self.model = FindingsModel(controller)
        self._syncing = False
        self._classes_shown = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Class"))
        self.filter_box = QComboBox()
        self.filter_box.currentIndexChanged.connect(self._filter_changed)
        row.addWidget(self.filter_box, 1)
        classes_button = QPushButton("Classes…")
        classes_button.clicked.connect(self.edit_classes)
        row.addWidget(classes_button)
        layout.addLayout(row)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.setItemDelegateForColumn(CLASS, ClassDelegate(controller, self.table))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, width in ((CLASS, 112), (MEASUREMENT, 92), (NAME, 80), (NOTE, 160), (KIND, 70), (SOURCE, 56),
                           (LOCK, 38)):
            self.table.setColumnWidth(col, width)
        self.setMinimumWidth(330)
        self.table.selectionModel().selectionChanged.connect(self._table_selection)
        self.table.clicked.connect(self._clicked)
        layout.addWidget(self.table, 1)
        self.count_label = QLabel("No slide open")
        layout.addWidget(self.count_label)
        controller.annotations_changed.connect(self._annotations_changed)
        controller.selection_changed.connect(self._view_selection)
        controller.classes_changed.connect(self._fill_filter)
        self._fill_filter()

    def _fill_filter(self) -> None:
        current = self.filter_box.currentData() if self.filter_box.count() else ALL
        self.filter_box.blockSignals(True)
        self.filter_box.clear()
        self.filter_box.addItem("All classes", ALL)
        try:
            classes = self.ctl.store.classes() if self.ctl.state is not None else []
        except PathviewError:
            classes = []
        for c in classes:
            self.filter_box.addItem(class_icon(c.color), c.name, c.name)
        self.filter_box.addItem(UNCLASSIFIED, NONE)
        index = self.filter_box.findData(current)
        self.filter_box.setCurrentIndex(max(index, 0))
        self.filter_box.blockSignals(False)
        self.refresh()

    def _filter_changed(self, _index: int) -> None:
        self.set_class_filter(self.filter_box.currentData())

    def set_class_filter(self, class_name: str | None) -> None:
        """Show one class (None: the unclassified ones; ALL: every class)."""
        class_name = NONE if class_name is None else class_name
        index = self.filter_box.findData(class_name)
        if index >= 0 and index != self.filter_box.currentIndex():
            self.filter_box.setCurrentIndex(index)  # comes back here through the signal
            return
        self.model.class_filter = class_name
        self.refresh()

    def _annotations_changed(self) -> None:
        if self.model.apply(self.ctl.last_change):
            self._show_count()
            self._view_selection(self.ctl.selected())
        else:
            self.refresh()

    def refresh(self) -> None:
        if not self._classes_shown and self.ctl.state is not None:
            self._classes_shown = True
            self._fill_filter()  # the first slide: the store's classes are known now
            return
        self.model.refresh()
        self._show_count()
        self._view_selection(self.ctl.selected())

    def _show_count(self) -> None:
        total, shown = len(self.ctl.scene), len(self.model.rows)
        mpp = self.ctl.mpp
        units = "" if self.ctl.state is None or mpp else " · measurements in pixels (the slide has no pixel size)"
        self.count_label.setText(f"{count(total, 'annotation')}"
                                 + (f", {shown:,} shown" if shown != total else "") + units)

    # -- selection, both ways -------------------------------------------------------------------
    def _table_selection(self, *_args) -> None:
        if self._syncing:
            return
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        self._syncing = True
        try:
            self.ctl.select([self.model.rows[r].id for r in rows])
        finally:
            self._syncing = False

    def _view_selection(self, selection: list) -> None:
        if self._syncing:
            return
        rows = [self.model.row_of[a.id] for a in selection if a.id in self.model.row_of]
        chosen = QItemSelection()
        for r in rows:
            chosen.select(self.model.index(r, 0), self.model.index(r, len(COLUMNS) - 1))
        self._syncing = True
        try:
            self.table.selectionModel().select(chosen, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            if rows:
                self.table.scrollTo(self.model.index(rows[0], 0))
        finally:
            self._syncing = False

    def _clicked(self, index) -> None:
        if len(self.table.selectionModel().selectedRows()) == 1 and index.isValid():
            self.ctl.navigate_to(self.model.rows[index.row()])

    def edit_classes(self) -> None:
        try:
            store = self.ctl.store
        except PathviewError as exc:
            self.count_label.setText(str(exc))
            return
        dialog = ClassEditor(store, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
