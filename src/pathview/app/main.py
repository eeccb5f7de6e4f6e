"""Start the desktop viewer."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from .main_window import MainWindow


def run_viewer(paths: list[str], cache_mb: int = 512) -> int:
    """Open the main window with up to two slides side by side; return the exit status."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("pathview")
    window = MainWindow(cache_mb=cache_mb)
    for i, p in enumerate(paths[:2]):
        window.open_path(p, beside=i > 0)
    window.show()
    return app.exec()
