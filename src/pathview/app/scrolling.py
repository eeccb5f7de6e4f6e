"""A dock panel that scrolls instead of forcing the window taller than the screen."""

from __future__ import annotations

from PySide6.QtWidgets import QScrollArea, QWidget


def scrollable(widget: QWidget) -> QScrollArea:
    """Wrap a tall panel so its dock can be short: the window then fits small screens."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(widget)
    return area
