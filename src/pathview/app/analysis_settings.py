"""Choose how the viewer analyses a slide: encoder, device, reference bank and tile size, kept between runs.

The choice lives in the viewer's QSettings under ``analysis/``; it is what Analysis ›
Analyse slide runs and what the staleness note compares a loaded analysis with. Encoders
whose weights are in no models folder are listed greyed, "not installed" (the registry
and the folder search need no torch). Which GPUs torch sees is asked of a child Python
once per viewer run, since importing torch takes seconds the window must not wait.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QSettings, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..analysis.reference import ReferenceError, bank_encoder
from ..encoders import list_specs
from ..encoders.weights import default_folder, locate
from ..scan import AnalysisConfig
from ..wording import count

GROUP = "analysis"
#: Tile resolutions offered (µm/px): 0.25 is a 40x scan's own, 4 already blurs cells into tissue texture.
TILE_MPP_RANGE = (0.25, 4.0)
GPU_PROBE = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"


def load_run(settings: QSettings) -> AnalysisConfig:
    """Return the stored choice; a value missing or unreadable (hand-edited file) keeps its default."""
    default = AnalysisConfig()
    try:
        tile_mpp = float(settings.value(f"{GROUP}/tile_mpp", default.tile_mpp))
    except (TypeError, ValueError):
        tile_mpp = default.tile_mpp
    if not TILE_MPP_RANGE[0] <= tile_mpp <= TILE_MPP_RANGE[1]:
        tile_mpp = default.tile_mpp
    return AnalysisConfig(encoder=str(settings.value(f"{GROUP}/encoder") or default.encoder),
                          device=str(settings.value(f"{GROUP}/device") or default.device),
                          tile_mpp=tile_mpp, reference=str(settings.value(f"{GROUP}/reference") or "") or None)


def save_run(settings: QSettings, run: AnalysisConfig) -> None:
    """Store ``run`` for the next viewer session."""
    settings.setValue(f"{GROUP}/encoder", run.encoder)
    settings.setValue(f"{GROUP}/device", run.device)
    settings.setValue(f"{GROUP}/tile_mpp", run.tile_mpp)
    settings.setValue(f"{GROUP}/reference", run.reference or "")
    settings.sync()


class GpuProbe(QObject):
    """Counts the CUDA GPUs torch sees, in a child Python, once; ``counted(n)`` says when it knows."""

    counted = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.count: int | None = None
        self._process: QProcess | None = None

    def start(self) -> None:
        """Ask, unless the answer is known or on its way."""
        if self.count is not None or self._process is not None:
            return
        self._process = process = QProcess(self)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        process.start(sys.executable, ["-c", GPU_PROBE])

    def _finished(self, code: int, _status) -> None:
        lines = bytes(self._process.readAllStandardOutput().data()).decode(errors="replace").split()
        answer = lines[-1] if lines else ""  # after any warning torch printed
        self._settle(int(answer) if code == 0 and answer.isdigit() else 0)  # no torch, or it crashed: CPU only

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:  # other errors also end in ``finished``
            self._settle(0)

    def _settle(self, gpus: int) -> None:
        self.count = gpus
        self.counted.emit(gpus)

    def stop(self) -> None:
        """End a probe still running (the window is closing)."""
        if self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning:
            self._process.kill()
            self._process.waitForFinished(1000)


class AnalysisSettingsDialog(QDialog):
    """Emits ``chosen(AnalysisConfig)`` when accepted; OK is disabled while the reference bank does not fit.

    A stored choice that no longer holds is never changed silently: an encoder no longer
    installed is replaced by the first installed one with a note saying so, and a bank that
    is gone keeps OK disabled until another bank or None is chosen.
    """

    chosen = Signal(object)

    def __init__(self, run: AnalysisConfig, gpus: int | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Analysis settings")
        self.encoder = QComboBox()
        self.encoder_note = QLabel()
        self.encoder_note.setStyleSheet("color: #a05a00")
        self.encoder_note.setWordWrap(True)
        self._add_encoders(run.encoder)
        self.encoder.currentIndexChanged.connect(lambda _: self._refresh())
        self.encoder.currentIndexChanged.connect(lambda _: self.encoder_note.clear())  # the user chose
        self.device = QComboBox()
        self.device.addItem(run.device)
        self.gpu_note = QLabel()
        self.set_gpus(gpus)
        self.tile_mpp = QDoubleSpinBox()
        self.tile_mpp.setRange(*TILE_MPP_RANGE)
        self.tile_mpp.setSingleStep(0.25)
        self.tile_mpp.setDecimals(2)
        self.tile_mpp.setSuffix(" µm/px")
        self.tile_mpp.setValue(run.tile_mpp)
        self.reference: str | None = None
        self._bank_encoder = ""
        self._stored_bank_problem = ""  # why the bank chosen before cannot be used; '' once one that can is chosen
        self.reference_label = QLabel()
        browse, clear = QPushButton("Choose…"), QPushButton("None")
        browse.clicked.connect(self._browse)
        clear.clicked.connect(lambda: self.choose_reference(None))
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #b00020")
        self.problem.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        device_row = QHBoxLayout()
        device_row.addWidget(self.device)
        device_row.addWidget(self.gpu_note, 1)
        bank_row = QHBoxLayout()
        bank_row.addWidget(self.reference_label, 1)
        bank_row.addWidget(browse)
        bank_row.addWidget(clear)
        form = QFormLayout()
        form.addRow("Encoder:", self.encoder)
        form.addRow("", self.encoder_note)
        form.addRow("Device:", device_row)
        form.addRow("Tile size:", self.tile_mpp)
        form.addRow("Reference bank:", bank_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        if not self.choose_reference(run.reference):  # the bank chosen before is gone or damaged
            self._stored_bank_problem = (f"The reference bank chosen before cannot be used: {self.problem.text()}. "
                                         "Choose another bank, or None.")
            self.reference_label.setText(f"{Path(run.reference).name} (cannot be used)")
            self.reference_label.setToolTip(run.reference)
            self._refresh()

    def _add_encoders(self, current: str) -> None:
        model = self.encoder.model()
        assert isinstance(model, QStandardItemModel)
        for spec in list_specs():
            installed = not spec.needs_weights or locate(spec) is not None
            self.encoder.addItem(f"{spec.name}: {spec.title}" + ("" if installed else " (not installed)"), spec.name)
            item = model.item(self.encoder.count() - 1)
            item.setEnabled(installed)
            if not installed:
                item.setToolTip(f"put {' or '.join(spec.files)} in {default_folder(spec)}/")
            if installed and spec.name == current.lower():
                self.encoder.setCurrentIndex(self.encoder.count() - 1)
        if self.encoder.currentData() != current.lower():
            why = "is not installed" if current.lower() in self.installed_encoders() else "is unknown"
            self.encoder_note.setText(f"the encoder '{current}' chosen before {why}: "
                                      f"{self.encoder.currentData()} is selected")

    def installed_encoders(self) -> dict[str, bool]:
        """Return each listed encoder's name and whether it can be chosen."""
        model = self.encoder.model()
        return {self.encoder.itemData(i): model.item(i).isEnabled() for i in range(self.encoder.count())}

    def set_gpus(self, gpus: int | None) -> None:
        """Offer ``cuda:0`` ... for the GPUs torch sees (None: still asking); the chosen device stays chosen.

        A device chosen earlier that torch does not see (now) stays listed: the run then says why it cannot use it.
        """
        current = self.device.currentText()
        names = ["auto", "cpu", *(f"cuda:{i}" for i in range(gpus or 0))]
        self.device.clear()
        self.device.addItems(names + ([current] if current not in names else []))
        self.device.setCurrentText(current)
        self.gpu_note.setText("looking for GPUs…" if gpus is None else f"torch sees {count(gpus, 'GPU')}")

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Reference bank", "",
                                              "Reference banks (*.h5 *.hdf5);;All files (*)")
        if path:
            self.choose_reference(path)

    def choose_reference(self, path: str | None) -> bool:
        """Use the bank at ``path`` (None: compare tiles within the slide); a file that is no bank is refused."""
        if path is not None:
            try:
                encoder = bank_encoder(path)
            except ReferenceError as exc:
                self.problem.setText(str(exc))
                return False
            self._bank_encoder = encoder
        self._stored_bank_problem = ""
        self.reference = str(path) if path is not None else None
        self.reference_label.setText(Path(path).name if path is not None
                                     else "none: tiles are compared within the slide")
        self.reference_label.setToolTip(str(path or ""))
        self._refresh()
        return True

    def run(self) -> AnalysisConfig:
        """Return the settings as chosen now."""
        return AnalysisConfig(encoder=self.encoder.currentData(), device=self.device.currentText(),
                              tile_mpp=round(self.tile_mpp.value(), 2), reference=self.reference)

    def _mismatch(self) -> str:
        encoder = self.encoder.currentData()
        if self.reference is None or self._bank_encoder == encoder:
            return ""
        return (f"reference bank '{Path(self.reference).name}' was built with encoder '{self._bank_encoder}', "
                f"not '{encoder}': choose that encoder, another bank or none")

    def _blocker(self) -> str:
        """Why OK cannot be pressed now ('' when it can)."""
        return self._stored_bank_problem or self._mismatch()

    def _refresh(self) -> None:
        blocker = self._blocker()
        self.problem.setText(blocker)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not blocker)

    def accept(self) -> None:
        if self._blocker():  # Enter while the bank does not fit or is gone: stay open
            return
        super().accept()
        self.chosen.emit(self.run())

