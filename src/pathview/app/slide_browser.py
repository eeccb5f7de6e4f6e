"""A folder of slides at a glance: thumbnail, name, size, scanner, mpp (loaded in the background)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from ..errors import PathviewError
from ..slide import open_slide
from .qimage import to_qimage

SLIDE_SUFFIXES = {".svs", ".ndpi", ".mrxs", ".scn", ".bif", ".tif", ".tiff", ".dcm", ".vms", ".vmu", ".svslide", ".png", ".jpg", ".jpeg"}


def slide_files(folder: Path) -> list[Path]:
    """Return the slides in ``folder``: files with a slide suffix and DICOM folders (one entry each)."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_dir() and any(p.glob("*.dcm")):
            out.append(p)
        elif p.is_file() and p.suffix.lower() in SLIDE_SUFFIXES:
            out.append(p)
    return out


class _Signals(QObject):
    loaded = Signal(int, object, str)


class SlideBrowser(QListWidget):
    """Lists a folder's slides; ``open_requested`` carries the chosen path."""

    open_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(96, 96))
        self._signals = _Signals()
        self._signals.loaded.connect(self._on_loaded)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="browser")
        self.itemActivated.connect(lambda item: self.open_requested.emit(item.data(Qt.ItemDataRole.UserRole)))

    def set_folder(self, folder: Path) -> None:
        self.clear()
        for i, path in enumerate(slide_files(folder)):
            item = QListWidgetItem(f"{path.name}\nloading…")
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            self.addItem(item)
            self._pool.submit(self._load, i, path)

    def _load(self, row: int, path: Path) -> None:
        try:
            with open_slide(path) as slide:
                info = slide.info
                thumb = np.asarray(slide.thumbnail(96))
            mpp = f"{info.mpp:.3g} µm/px" if info.mpp else "no mpp"
            text = f"{path.name}\n{info.dimensions[0]}x{info.dimensions[1]} · {info.vendor} · {mpp}"
            self._signals.loaded.emit(row, thumb, text)
        except PathviewError as exc:
            self._signals.loaded.emit(row, None, f"{path.name}\n⚠ {exc.cause if hasattr(exc, 'cause') else exc}")

    def _on_loaded(self, row: int, thumb, text: str) -> None:
        item = self.item(row)
        if item is None:
            return
        item.setText(text)
        if thumb is not None:
            item.setIcon(QIcon(QPixmap.fromImage(to_qimage(thumb).copy())))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
