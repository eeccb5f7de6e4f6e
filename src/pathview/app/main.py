"""Start the desktop viewer."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from PySide6.QtWidgets import QApplication

from .main_window import MainWindow


def run_viewer(paths: list[str], cache_mb: int = 512, scan_dirs: Sequence[str] = (), analyse: bool = False,
               workspace: str | None = None) -> int:
    """Open the main window with up to two slides side by side; return the exit status.

    ``scan_dirs``: folders of finished analyses to show with the slides (``pathview scan -o``);
    ``analyse``: start analysing the first slide unless it already has a finished analysis;
    ``workspace``: the folder holding annotations and findings (None: the user's default one).
    """
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("pathview")
    window = MainWindow(cache_mb=cache_mb, workspace=workspace)
    for folder in scan_dirs:
        window.analysis.add_scan_dir(folder)
    for i, p in enumerate(paths[:2]):
        window.open_path(p, beside=i > 0)
    window.show()
    if analyse and window.views:
        window.analysis.analyse_if_missing()
    return app.exec()
