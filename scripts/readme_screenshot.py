"""Make the README screenshot: the main window on a real slide, rendered offscreen.

    QT_QPA_PLATFORM=offscreen python scripts/readme_screenshot.py SLIDE -o docs/screenshot.png \
        [--workspace DIR] [--magnification 10] [--center X,Y]

With ``--workspace``, the annotations stored there for the slide (``pathview import``) are shown.
"""

from __future__ import annotations

import argparse
import time

from PySide6.QtWidgets import QApplication

from pathview.app.main_window import MainWindow


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("slide")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--magnification", type=float, default=None)
    parser.add_argument("--center", default=None, help="level-0 X,Y")
    parser.add_argument("--workspace", default=None, help="workspace with the slide's annotations")
    args = parser.parse_args()
    app = QApplication([])
    window = MainWindow(workspace=args.workspace)
    window.resize(1400, 860)
    view = window.open_path(args.slide)
    window.show()
    app.processEvents()
    if args.center:
        x, y = (float(v) for v in args.center.split(","))
        view.center_on(x, y)
    if args.magnification:
        view.set_magnification(args.magnification)
    deadline = time.time() + 30
    while time.time() < deadline and not (view.is_complete() and view.loader.idle()):
        app.processEvents()
        time.sleep(0.02)
    app.processEvents()
    window.grab().save(args.output)
    window.close()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
