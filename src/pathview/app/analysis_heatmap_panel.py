"""The "Heatmap" dock: show/hide, opacity, colour map, threshold and one switch per score layer.

Every change emits the full :class:`HeatmapSettings`; the overlay rebuilds its small
image from them. A colour bar shows what the colours mean, with the threshold marked.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ..analysis.regions import CLASS_COLORS, CLASS_TITLES
from .analysis_result import LAYERS, AnalysisResult
from .heatmap_layer import COLORMAPS, HeatmapSettings, colour_table

BAR_W, BAR_H = 220, 10
SWATCH = 12  # px: a layer switch's colour square, no taller than its text


def _swatch(rgb: tuple[int, int, int]) -> QPixmap:
    pix = QPixmap(SWATCH, SWATCH)
    pix.fill(QColor(*rgb))
    return pix


def _layer_text(name: str, share: float | None) -> str:
    """Return a layer switch's text: its title and, once analysed, its share of tiles above the threshold."""
    return CLASS_TITLES[name] + (f"  ({100 * share:.1f}% of tiles)" if share is not None else "")


class HeatmapPanel(QWidget):
    """Emits ``settings_changed(HeatmapSettings)`` and ``shown_changed(bool)``."""

    settings_changed = Signal(object)
    shown_changed = Signal(bool)

    def __init__(self, settings: HeatmapSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        s = settings or HeatmapSettings()
        self.show_box = QCheckBox("Show  (H)")
        self.show_box.setChecked(True)
        self.show_box.toggled.connect(self.shown_changed)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(5, 100)
        self.opacity.setValue(round(s.opacity * 100))
        self.opacity.setToolTip("Opacity of the heatmap")
        self.cmap = QComboBox()
        self.cmap.addItems(list(COLORMAPS))
        self.cmap.setCurrentText(s.cmap)
        self.cmap.setToolTip("Colour map")
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 100)
        self.threshold.setValue(round(s.threshold * 100))
        self.threshold_label = QLabel()
        self.bar = QLabel()
        self.bar.setScaledContents(True)  # as wide as the threshold slider above it: the mark sits under its handle
        self.bar.setFixedHeight(BAR_H)
        self.bar.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.bar.setToolTip("Score 0 (left) to 1 (right); tiles below the threshold line are not coloured. "
                            "0.5 is the analysis' decision threshold.")
        self.layer_boxes: dict[str, QCheckBox] = {}
        # Compact, so every layer switch shows without scrolling beside the Assistant dock in an 860-px-high
        # window: showing, opacity and colour map share one row, and the colour bar hugs the threshold.
        controls = QGridLayout()
        controls.setVerticalSpacing(3)
        controls.setColumnStretch(1, 1)
        controls.addWidget(self.show_box, 0, 0)
        controls.addWidget(self.opacity, 0, 1)
        controls.addWidget(self.cmap, 0, 2)
        controls.addWidget(QLabel("Threshold"), 1, 0)
        controls.addWidget(self.threshold, 1, 1)
        controls.addWidget(self.threshold_label, 1, 2)
        controls.addWidget(self.bar, 2, 1)
        layers = QVBoxLayout()
        layers.setSpacing(0)
        for name in LAYERS:
            box = QCheckBox(_layer_text(name, 1.0))
            box.setIcon(_swatch(CLASS_COLORS[name]))
            box.setIconSize(QSize(SWATCH, SWATCH))
            box.setMinimumWidth(box.sizeHint().width())  # room for the widest share a result adds: never clipped
            box.setText(_layer_text(name, None))
            box.setChecked(name in s.layers)
            box.toggled.connect(self._changed)
            self.layer_boxes[name] = box
            layers.addWidget(box)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        outer.setSpacing(4)
        outer.addLayout(controls)
        outer.addLayout(layers)
        outer.setAlignment(Qt.AlignmentFlag.AlignTop)
        for w in (self.opacity, self.threshold):
            w.valueChanged.connect(self._changed)
        self.cmap.currentTextChanged.connect(self._changed)
        self._refresh_legend()

    def settings(self) -> HeatmapSettings:
        return HeatmapSettings(
            opacity=self.opacity.value() / 100, cmap=self.cmap.currentText(), threshold=self.threshold.value() / 100,
            layers=frozenset(n for n, b in self.layer_boxes.items() if b.isChecked()))

    def set_result(self, result: AnalysisResult | None) -> None:
        """Show each layer's share of tiles above the decision threshold; grey out layers the analysis lacks."""
        for name, box in self.layer_boxes.items():
            present = result is not None and name in result.scores
            box.setEnabled(present)
            box.setText(_layer_text(name, result.fraction_above(name) if present else None))

    def _changed(self, *_: object) -> None:
        self._refresh_legend()
        self.settings_changed.emit(self.settings())

    def _refresh_legend(self) -> None:
        s = self.settings()
        self.threshold_label.setText(f"{s.threshold:.2f}")
        lut = colour_table(s.cmap)
        idx = np.linspace(0, len(lut) - 1, BAR_W).round().astype(np.int64)
        rgb = np.ascontiguousarray(np.repeat(lut[idx][None], BAR_H, 0))
        image = QImage(rgb.data, BAR_W, BAR_H, BAR_W * 3, QImage.Format.Format_RGB888).copy()
        painter = QPainter(image)
        below = round(s.threshold * BAR_W)
        painter.fillRect(0, 0, below, BAR_H, QColor(255, 255, 255, 170))  # the part that is not drawn
        painter.setPen(QPen(QColor(0, 0, 0), 2))
        painter.drawLine(below, 0, below, BAR_H)
        painter.end()
        self.bar.setPixmap(QPixmap.fromImage(image))
