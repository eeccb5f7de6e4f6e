"""One answer in the Assistant panel, and the outline of its region on the slide.

The model's text is shown as plain text only (never interpreted as HTML), beside the
region it is about, the model that wrote it and the AI-generated / not-a-diagnosis mark.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from ..assistant import Turn
from ..viewport import Viewport

_STATE_TEXT = {"pending": "reading the region…", "streaming": "answering…", "done": "", "stopped": "stopped",
               "failed": "failed"}
REGION_COLOUR = QColor(0, 150, 255)


def region_text(turn: Turn) -> str:
    """Return where the answer's region is, in pixels and (when known) micrometres."""
    x, y, w, h = turn.box
    size = turn.context.facts.get("size_um")
    physical = f" · {size[0]:.0f} × {size[1]:.0f} µm" if size else ""
    return f"Region x {x}, y {y}, {w} × {h} px{physical}"


class TurnWidget(QFrame):
    """A question, its streamed answer, its region, and the actions on it."""

    go_to_region = Signal(object)  # the turn
    save_requested = Signal(object)

    def __init__(self, turn: Turn, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.turn = turn
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(3)
        self.question = QLabel()
        self.question.setTextFormat(Qt.TextFormat.PlainText)
        self.question.setWordWrap(True)
        self.question.setText(f"Q: {turn.question}")
        bold = QFont(self.question.font())
        bold.setBold(True)
        self.question.setFont(bold)
        self.answer = QTextBrowser()
        self.answer.setOpenLinks(False)
        self.answer.setAcceptRichText(False)
        self.answer.setFrameShape(QFrame.Shape.NoFrame)
        self.answer.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.answer.document().documentLayout().documentSizeChanged.connect(self._fit_height)
        self.answer.setPlainText(turn.answer)
        self.region = QLabel(region_text(turn) + f" · {turn.model}")  # the model name comes from the server
        self.region.setTextFormat(Qt.TextFormat.PlainText)
        self.region.setWordWrap(True)
        self.region.setStyleSheet("color: #555;")
        self.region.setToolTip(turn.context.text)  # what the model was told: scale, scores, annotation
        self.mark = QLabel("AI-generated · not a diagnosis")
        self.mark.setToolTip(turn.notice)
        self.mark.setStyleSheet("color: #a05a00; font-weight: bold;")
        self.state = QLabel(_STATE_TEXT.get(turn.state, turn.state))
        self.state.setTextFormat(Qt.TextFormat.PlainText)  # a failure quotes the server, e.g. an HTML error page
        self.state.setStyleSheet("color: #555;")
        self.go_button = QPushButton("Go to region")
        self.go_button.clicked.connect(lambda: self.go_to_region.emit(self.turn))
        self.save_button = QPushButton("Save as finding")
        self.save_button.clicked.connect(lambda: self.save_requested.emit(self.turn))
        self.save_button.setEnabled(False)
        marks = QHBoxLayout()
        marks.addWidget(self.mark)
        marks.addWidget(self.state, 1)
        actions = QHBoxLayout()
        actions.addStretch(1)
        actions.addWidget(self.go_button)
        actions.addWidget(self.save_button)
        for w in (self.question, self.answer, self.region):
            layout.addWidget(w)
        layout.addLayout(marks)
        layout.addLayout(actions)

    def _fit_height(self, size) -> None:
        self.answer.setFixedHeight(int(size.height()) + 6)

    def append(self, text: str) -> None:
        """Add streamed text at the end, as plain text."""
        cursor = self.answer.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(text)
        self.state.setText(_STATE_TEXT["streaming"])

    def mark_saved(self, annotation_id: str) -> None:
        self.save_button.setEnabled(False)
        self.save_button.setText("Saved as finding")
        self.save_button.setToolTip(f"filed under annotation {annotation_id}")

    def finish(self, state: str, error: str = "") -> None:
        self.state.setText(f"failed: {error}" if state == "failed" and error else _STATE_TEXT.get(state, state))
        self.state.setWordWrap(True)
        self.save_button.setEnabled(state in ("done", "stopped") and bool(self.turn.answer.strip())
                                    and self.turn.saved_to is None)


class RegionLayer:
    """Outlines the region of the answer last asked about or gone to, on the slide view."""

    def __init__(self) -> None:
        self.visible = True
        self.box: tuple[int, int, int, int] | None = None

    def paint(self, painter: QPainter, view: Viewport) -> None:
        if self.box is None:
            return
        x, y, w, h = self.box
        sx0, sy0 = view.to_screen(x, y)
        sx1, sy1 = view.to_screen(x + w, y + h)
        rect = QRectF(sx0, sy0, sx1 - sx0, sy1 - sy0)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(255, 255, 255), 5))
        painter.drawRect(rect)
        pen = QPen(REGION_COLOUR, 3, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawRect(rect)
        font = QFont()
        font.setPixelSize(16)
        font.setBold(True)
        painter.setFont(font)
        label = "Assistant region"
        text = painter.fontMetrics().boundingRect(label)
        plate = QRectF(rect.left(), rect.top() - text.height() - 6, text.width() + 10, text.height() + 4)
        painter.fillRect(plate, QColor(255, 255, 255, 220))  # legible over any stain
        painter.setPen(REGION_COLOUR)
        painter.drawText(plate, Qt.AlignmentFlag.AlignCenter, label)
