"""The "Regions" dock: the analysis' ranked regions with a thumbnail each, to visit, accept or dismiss.

Thumbnails are read from the slide on a background thread (one read per region, at
the pyramid level that suits 96 px) and arrive one by one; the list is usable at once.
The panel only shows and asks: the controller files findings and remembers dismissals.
"""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QObject, QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from shapely.geometry import MultiPolygon

from ..slide.reader import Slide
from ..wording import count
from .analysis_result import RegionItem
from .qimage import to_qimage

THUMB = 96
CONTEXT = 1.5  # the thumbnail spans this many times the region's longer side, so its surroundings show


def thumbnail_box(region: RegionItem, dimensions: tuple[int, int]) -> tuple[int, int, int, int]:
    """Return the square level-0 box (x, y, side, side) a region's thumbnail shows, kept on the slide."""
    x0, y0, x1, y1 = region.bbox
    side = max(x1 - x0, y1 - y0) * CONTEXT
    side = min(side, *dimensions)
    x = min(max((x0 + x1 - side) / 2, 0), dimensions[0] - side)
    y = min(max((y0 + y1 - side) / 2, 0), dimensions[1] - side)
    return int(x), int(y), max(1, int(side)), max(1, int(side))


class ThumbnailReader(QObject):
    """Reads region thumbnails on one worker thread; ``ready(region id, RGB array)`` fires per region."""

    ready = Signal(str, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read(self, slide: Slide, regions: list[RegionItem]) -> None:
        """Replace any running job with reading ``regions`` (best first)."""
        self.cancel()
        stop = self._stop = threading.Event()
        jobs = [(r.id, thumbnail_box(r, slide.dimensions)) for r in regions]

        def run() -> None:
            for region_id, box in jobs:
                if stop.is_set():
                    return
                try:
                    pixels = slide.read_scaled(box, (THUMB, THUMB))
                except Exception:  # a damaged area or a slide closed meanwhile: the row keeps its placeholder
                    continue
                try:
                    self.ready.emit(region_id, pixels)
                except RuntimeError:  # the panel is gone
                    return

        self._thread = threading.Thread(target=run, name="region-thumbnails", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Drop the running job without waiting: it ends after its current read (never blocks the window)."""
        self._stop.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading and wait briefly for the current read (window closing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def outlined(pixels: np.ndarray, region: RegionItem, box: tuple[int, int, int, int]) -> QPixmap:
    """Return the thumbnail with the region's outline drawn in its class colour."""
    image = to_qimage(pixels).copy()
    x, y, side, _ = box
    k = THUMB / side
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setPen(QPen(QColor(*region.color), 2))
    geoms = region.geometry.geoms if isinstance(region.geometry, MultiPolygon) else [region.geometry]
    for poly in geoms:
        ring = getattr(poly, "exterior", None)
        if ring is not None:
            painter.drawPolygon(QPolygonF([QPointF((px - x) * k, (py - y) * k) for px, py in ring.coords]))
    painter.end()
    return QPixmap.fromImage(image)


class RegionsPanel(QWidget):
    """Ranked list; emits ``region_chosen``, ``accept_requested``, ``dismiss_requested``, ``restore_requested``."""

    region_chosen = Signal(object)
    accept_requested = Signal(object)
    dismiss_requested = Signal(object)
    restore_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.regions: list[RegionItem] = []
        self.dismissed: set[str] = set()
        self.accepted: set[str] = set()
        self._slide: Slide | None = None
        self.thumbnails: dict[str, QPixmap] = {}
        self._note = ""
        self.reader = ThumbnailReader(self)
        self.reader.ready.connect(self._on_thumbnail)
        self.header = QLabel("No analysis for this slide: Analysis › Analyse slide.")
        self.header.setWordWrap(True)
        self.list = QListWidget()
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setSpacing(2)
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemClicked.connect(self._on_click)
        self.list.itemActivated.connect(self._on_click)
        self.list.currentItemChanged.connect(lambda *_: self._refresh_buttons())
        self.accept_button = QPushButton("Accept as finding")
        self.accept_button.setToolTip("Add this region to the slide's findings as an annotation")
        self.dismiss_button = QPushButton("Dismiss")
        self.accept_button.clicked.connect(lambda: self._ask(self.accept_requested))
        self.dismiss_button.clicked.connect(self._dismiss_or_restore)
        self.show_dismissed = QCheckBox("Show dismissed")
        self.show_dismissed.toggled.connect(lambda _: self._rebuild(keep=self._current_id()))
        buttons = QHBoxLayout()
        buttons.addWidget(self.accept_button)
        buttons.addWidget(self.dismiss_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.show_dismissed)
        self._refresh_buttons()

    # -- content ------------------------------------------------------------------------------
    def set_regions(self, slide: Slide | None, regions: list[RegionItem], dismissed: set[str],
                    accepted: set[str], note: str = "") -> None:
        """Show ``regions`` (best first) and start reading their thumbnails from ``slide``."""
        self.reader.cancel()
        self._slide, self.regions = slide, list(regions)
        self.dismissed, self.accepted = set(dismissed), set(accepted)
        self.thumbnails = {}
        self._note = note
        self._rebuild()
        if slide is not None and self.regions:
            self.reader.read(slide, self.regions)

    def set_review(self, dismissed: set[str], accepted: set[str]) -> None:
        """Update the dismissed/accepted marks, keeping the selection where it can (no-op when unchanged)."""
        if set(dismissed) == self.dismissed and set(accepted) == self.accepted:
            return
        current = self.current()
        self.dismissed, self.accepted = set(dismissed), set(accepted)
        self._rebuild(keep=current.id if current else None)

    def visible_regions(self) -> list[RegionItem]:
        return [r for r in self.regions if self.show_dismissed.isChecked() or r.id not in self.dismissed]

    def _rebuild(self, keep: str | None = None) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for region in self.visible_regions():
            item = QListWidgetItem(self._text(region))
            item.setData(Qt.ItemDataRole.UserRole, region.id)
            item.setIcon(QIcon(self.thumbnails.get(region.id, self._placeholder(region))))
            if region.id in self.dismissed:
                item.setForeground(QColor(140, 140, 140))
            self.list.addItem(item)
            if region.id == keep:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        hidden = sum(1 for r in self.regions if r.id in self.dismissed)
        if self.regions:
            self.header.setText(f"{count(len(self.regions), 'region')}, best first"
                                + (f" · {hidden} dismissed" if hidden else "") + "  ·  N / Shift+N: next / previous"
                                + (f"\n{self._note}" if self._note else ""))
        elif self._note:
            self.header.setText(self._note)
        self._refresh_buttons()

    def _text(self, r: RegionItem) -> str:
        area = f" · {r.area_mm2:.3f} mm²" if r.area_mm2 is not None else ""
        status = "  ✓ finding" if r.id in self.accepted else "  (dismissed)" if r.id in self.dismissed else ""
        return f"#{r.rank}  {r.title}{status}\nscore {r.score:.2f}\n{count(r.tiles, 'tile')}{area}"

    @staticmethod
    def _placeholder(region: RegionItem) -> QPixmap:
        pix = QPixmap(THUMB, THUMB)
        pix.fill(QColor(235, 235, 235))
        painter = QPainter(pix)
        painter.setPen(QPen(QColor(*region.color), 2))
        painter.drawRect(1, 1, THUMB - 2, THUMB - 2)
        painter.end()
        return pix

    def _on_thumbnail(self, region_id: str, pixels: np.ndarray) -> None:
        region = next((r for r in self.regions if r.id == region_id), None)
        if region is None or self._slide is None:
            return
        self.thumbnails[region_id] = outlined(pixels, region, thumbnail_box(region, self._slide.dimensions))
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == region_id:
                item.setIcon(QIcon(self.thumbnails[region_id]))

    # -- selection and navigation -------------------------------------------------------------
    def _current_id(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def current(self) -> RegionItem | None:
        rid = self._current_id()
        return next((r for r in self.regions if r.id == rid), None)

    def select(self, region_id: str) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == region_id:
                self.list.setCurrentRow(row)
                return

    def step(self, delta: int) -> RegionItem | None:
        """Select the next (``delta`` 1) or previous (-1) region, wrapping around, and go to it."""
        rows = self.list.count()
        if not rows:
            return None
        row = self.list.currentRow()
        row = (0 if delta > 0 else rows - 1) if row < 0 else (row + delta) % rows
        self.list.setCurrentRow(row)
        region = self.current()
        if region is not None:
            self.region_chosen.emit(region)
        return region

    def _on_click(self, item: QListWidgetItem) -> None:
        self.list.setCurrentItem(item)
        region = self.current()
        if region is not None:
            self.region_chosen.emit(region)

    # -- actions ------------------------------------------------------------------------------
    def _ask(self, signal) -> None:
        region = self.current()
        if region is not None:
            signal.emit(region)

    def _dismiss_or_restore(self) -> None:
        region = self.current()
        if region is not None:
            (self.restore_requested if region.id in self.dismissed else self.dismiss_requested).emit(region)

    def _refresh_buttons(self) -> None:
        region = self.current()
        self.accept_button.setEnabled(region is not None and region.id not in self.accepted)
        self.dismiss_button.setEnabled(region is not None)
        self.dismiss_button.setText("Restore" if region is not None and region.id in self.dismissed else "Dismiss")

    def shutdown(self) -> None:
        self.reader.stop()
