"""Ask for the pixel size of a slide that records none, without offering a value Enter would accept.

A pre-filled 0.25 let a pathologist press Enter and silently declare a 20x slide 40x,
halving every area and distance. Here nothing is chosen at first: 40x, 20x or a typed
value must be picked before OK becomes available.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

#: The scans pathologists meet most, as (label, µm per pixel at full resolution).
PRESETS: tuple[tuple[str, float], ...] = (("40x scan: 0.25 µm/px", 0.25), ("20x scan: 0.5 µm/px", 0.5))
#: A typed pixel size must lie in this range (µm/px): beyond it, it is surely a typo.
MPP_RANGE = (0.05, 50.0)


class PixelSizeDialog(QDialog):
    """Emits ``chosen(mpp)`` when accepted; OK stays disabled until a preset or a valid value is chosen."""

    chosen = Signal(float)

    def __init__(self, slide_name: str, parent: QWidget | None = None,
                 needed_for: str = "the analysis needs to tile it at 0.5 µm/px",
                 declared: float | None = None) -> None:
        """``needed_for`` says what asks for it; ``declared``: the value given earlier, being corrected."""
        super().__init__(parent)
        self.setWindowTitle("Pixel size needed")
        earlier = f"\nYou declared {declared:g} µm/px for it earlier." if declared else ""
        prompt = QLabel(f"'{slide_name}' records no pixel size, which {needed_for}.{earlier}\n"
                        "What was it scanned at? (A wrong value makes every measurement wrong.)")
        prompt.setWordWrap(True)
        self.prompt = prompt
        self.group = QButtonGroup(self)  # exclusive, with nothing checked until the user picks
        self.presets: list[QRadioButton] = []
        for text, _mpp in PRESETS:
            button = QRadioButton(text)
            self.group.addButton(button)
            self.presets.append(button)
        self.other = QRadioButton("Other (µm/px):")
        self.group.addButton(self.other)
        self.value = QLineEdit()
        self.value.setPlaceholderText(f"{MPP_RANGE[0]:g} to {MPP_RANGE[1]:g}")
        self.value.textEdited.connect(lambda _: self.other.setChecked(True))
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #b00020")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.group.buttonToggled.connect(lambda *_: self._refresh())
        self.value.textChanged.connect(lambda _: self._refresh())
        other_row = QHBoxLayout()
        other_row.addWidget(self.other)
        other_row.addWidget(self.value, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(prompt)
        for button in self.presets:
            layout.addWidget(button)
        layout.addLayout(other_row)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self._refresh()

    def mpp(self) -> float | None:
        """Return the chosen µm per pixel, or None while nothing valid is chosen."""
        for button, (_text, mpp) in zip(self.presets, PRESETS):
            if button.isChecked():
                return mpp
        if self.other.isChecked():
            return self._typed()
        return None

    def _typed(self) -> float | None:
        try:
            mpp = float(self.value.text().strip().replace(",", "."))
        except ValueError:
            return None
        return mpp if MPP_RANGE[0] <= mpp <= MPP_RANGE[1] else None

    def _refresh(self) -> None:
        typed = self.value.text().strip()
        bad = self.other.isChecked() and bool(typed) and self._typed() is None
        self.problem.setText(f"'{typed}' is not a pixel size between {MPP_RANGE[0]:g} and {MPP_RANGE[1]:g} µm/px."
                             if bad else "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self.mpp() is not None)

    def accept(self) -> None:
        mpp = self.mpp()
        if mpp is None:  # Enter with nothing chosen: stay open
            return
        super().accept()
        self.chosen.emit(mpp)
