"""What a feature implements to draw on a slide view or take its input (annotations, heatmaps).

A layer paints in device pixels with the view's geometry (``view.to_screen`` maps a
level-0 point to the screen). A tool's handlers get the ``SlideView`` and the Qt event
and return True when they used the event; unused events fall through to navigation.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtGui import QPainter

from ..viewport import Viewport


class ViewLayer(Protocol):
    visible: bool

    def paint(self, painter: QPainter, view: Viewport) -> None: ...


class ViewTool(Protocol):
    """Any of ``mouse_press``, ``mouse_move``, ``mouse_release``, ``mouse_double_click``,
    ``key_press`` (each ``(slide_view, event) -> bool``) may be defined; missing ones pass."""
