"""Edit the annotation classes: add, rename, recolour, remove (the list is shared by every slide).

Renaming a class renames it on every annotation; removing one leaves its annotations
with the name, drawn in the unclassified colour, so nothing a pathologist classified is
silently changed.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import PathviewError
from ..findings import AnnotationClass, FindingsStore


def class_icon(rgb: tuple[int, int, int], size: int = 14) -> QIcon:
    """A filled colour swatch with a dark border."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(60, 60, 60))
    inner = QPixmap(size - 2, size - 2)
    inner.fill(QColor(*rgb))
    painter = QPainter(pixmap)
    painter.drawPixmap(1, 1, inner)
    painter.end()
    return QIcon(pixmap)


class ClassEditor(QDialog):
    def __init__(self, store: FindingsStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Annotation classes")
        self.store = store
        self.list = QListWidget()
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        row = QHBoxLayout()
        for text, slot in (("Add…", self.add), ("Rename…", self.rename), ("Colour…", self.recolour),
                           ("Remove", self.remove)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            row.addWidget(button)
        layout.addLayout(row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        for c in self.store.classes():
            item = QListWidgetItem(class_icon(c.color), c.name)
            item.setData(Qt.ItemDataRole.UserRole, c)
            self.list.addItem(item)

    def _current(self) -> AnnotationClass | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _apply(self, change) -> None:
        try:
            change()
        except PathviewError as exc:
            QMessageBox.warning(self, "Classes", str(exc))
        self.refresh()

    def add(self) -> None:
        name, ok = QInputDialog.getText(self, "New class", "Name:")
        name = name.strip()
        if ok and name:
            color = QColorDialog.getColor(QColor(255, 200, 0), self, f"Colour of {name}")
            if color.isValid():
                self._apply(lambda: self.store.set_class(AnnotationClass(name, color.getRgb()[:3])))

    def rename(self) -> None:
        c = self._current()
        if c is None:
            return
        name, ok = QInputDialog.getText(self, "Rename class", "New name:", text=c.name)
        name = name.strip()
        if ok and name and name != c.name:
            self._apply(lambda: self.store.rename_class(c.name, name))

    def recolour(self) -> None:
        c = self._current()
        if c is None:
            return
        color = QColorDialog.getColor(QColor(*c.color), self, f"Colour of {c.name}")
        if color.isValid():
            self._apply(lambda: self.store.set_class(AnnotationClass(c.name, color.getRgb()[:3])))

    def remove(self) -> None:
        c = self._current()
        if c is not None:
            self._apply(lambda: self.store.remove_class(c.name))
