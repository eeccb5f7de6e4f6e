"""Slide information: metadata, vendor properties and associated images (label hidden by default)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..slide.reader import Slide
from .qimage import to_qimage

#: Associated images that may show patient identifiers: shown only on request.
PRIVATE_IMAGES = {"label", "macro"}


class InfoPanel(QTabWidget):
    def __init__(self, slide: Slide, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        info = slide.info
        summary = [
            ("File", info.path), ("Vendor", info.vendor),
            ("Dimensions", f"{info.dimensions[0]} x {info.dimensions[1]} px"),
            ("Levels", ", ".join(f"/{d:.3g}" for d in info.level_downsamples)),
            ("mpp", f"{info.mpp:.4g} µm/px ({info.mpp_source})" if info.mpp else "not recorded"),
            ("Magnification", f"{info.objective_power:g}x ({info.objective_source})" if info.objective_power else "unknown"),
            ("Quickhash", info.quickhash[:16] + "…"),
        ]
        rows = summary + sorted(info.properties.items())
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Property", "Value"])
        for i, (k, v) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(k))
            table.setItem(i, 1, QTableWidgetItem(str(v)))
        table.horizontalHeader().setStretchLastSection(True)
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.addTab(table, "Properties")
        images = QWidget()
        layout = QVBoxLayout(images)
        self.image_labels: dict[str, QLabel] = {}
        for name in info.associated_images:
            layout.addWidget(QLabel(f"<b>{name}</b>"))
            holder = QLabel()
            holder.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.image_labels[name] = holder
            if name in PRIVATE_IMAGES:
                button = QPushButton(f"Show {name} (may contain patient data)")
                button.clicked.connect(lambda _=False, n=name, b=button: (self._show(slide, n), b.hide()))
                layout.addWidget(button)
            else:
                self._show(slide, name)
            layout.addWidget(holder)
        if not info.associated_images:
            layout.addWidget(QLabel("No associated images."))
        layout.addStretch(1)
        self.addTab(images, "Associated images")

    def _show(self, slide: Slide, name: str) -> None:
        img = slide.associated_image(name)
        img.thumbnail((240, 240))
        self.image_labels[name].setPixmap(QPixmap.fromImage(to_qimage(np.asarray(img)).copy()))
