"""The overview (minimap): the whole slide with the viewport rectangle; click or drag to jump."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

from .qimage import to_qimage
from .slide_view import SlideView


class OverviewWidget(QWidget):
    def __init__(self, view: SlideView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slide_view = view
        self._image = to_qimage(view._thumb)
        view.view_changed.connect(lambda _: self.update())
        self.setMinimumSize(160, 120)

    def sizeHint(self) -> QSize:
        return QSize(260, 200)

    def _image_rect(self) -> QRectF:
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(250, 250, 250))
        r = self._image_rect()
        p.drawImage(r, self._image)
        v = self.slide_view.view
        sw, sh = self.slide_view.slide.dimensions
        k = r.width() / sw
        box = QRectF(r.x() + v.x0 * k, r.y() + v.y0 * k, v.width * v.downsample * k, v.height * v.downsample * k)
        p.setPen(QPen(QColor(220, 30, 30), 2))
        p.drawRect(box.intersected(r.adjusted(-1, -1, 1, 1)))
        p.end()

    def _jump(self, pos) -> None:
        r = self._image_rect()
        sw, _ = self.slide_view.slide.dimensions
        k = sw / r.width()
        self.slide_view.center_on((pos.x() - r.x()) * k, (pos.y() - r.y()) * k)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._jump(event.position())

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._jump(event.position())
