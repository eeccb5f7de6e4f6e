"""The status-bar progress of a background analysis: what it is doing, how far, and a Cancel button."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from ..analysis.analyze import AnalyzeEvent

STAGES = {"start": "loading the encoder", "tissue": "finding tissue", "score": "scoring", "write": "writing results",
          "done": "done"}


class AnalysisProgress(QWidget):
    """Empty while idle; ``cancel_requested`` when the user presses Cancel.

    Its height is reserved even while empty, so starting an analysis never changes the
    status bar's height (which would resize and repaint the whole slide view).
    """

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the analysis; nothing half-finished is kept as a result")
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.setFixedHeight(max(w.sizeHint().height() for w in (self.label, self.bar, self.cancel_button)))
        self._set_active(False)

    @property
    def active(self) -> bool:
        return not self.bar.isHidden()

    def _set_active(self, active: bool) -> None:
        for w in (self.label, self.bar, self.cancel_button):
            w.setVisible(active)

    def begin(self, slide_name: str) -> None:
        self.label.setText(f"Analysing {slide_name}: starting")
        self.bar.setRange(0, 0)  # busy until the tile count is known
        self.cancel_button.setEnabled(True)
        self._set_active(True)

    def update_from(self, event: AnalyzeEvent) -> None:
        name = self.label.text().split(":")[0]
        if event.stage == "encode" and event.total:
            self.bar.setRange(0, event.total)
            self.bar.setValue(event.done)
            rate = f", {event.tiles_per_s:.0f} tiles/s" if event.tiles_per_s else ""
            self.label.setText(f"{name}: encoding tiles {event.done}/{event.total}{rate}")
        else:
            if event.stage in ("score", "write"):
                self.bar.setRange(0, 0)
            self.label.setText(f"{name}: {STAGES.get(event.stage, event.stage)}")

    def cancel(self) -> None:
        """Say that the run is stopping and ask for it (the button and Analysis › Cancel analysis)."""
        self.cancel_button.setEnabled(False)
        self.label.setText(self.label.text().split(":")[0] + ": cancelling")
        self.cancel_requested.emit()

    def end(self) -> None:
        self._set_active(False)
