"""Viewer responsiveness on a large slide, offscreen, with the real window.

Measures: open to first complete frame; a scripted tour of pans and zooms at several
magnifications, reporting p50/p95 paint time, the fraction of frames with any blank
area (goal 0: the thumbnail and coarser tiles stand in while exact tiles load), and the
p95 time until a new field of view is fully sharp (goal < 250 ms, Schüffler et al. 2022).

    QT_QPA_PLATFORM=offscreen python benchmarks/viewer.py benchmarks/data/large-40x.svs
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from pathview.app.main_window import MainWindow  # noqa: E402
from pathview.app.qimage import from_qimage  # noqa: E402


def wait_sharp(app, view, timeout: float = 10.0) -> float:
    start = time.perf_counter()
    while not view.is_complete():
        app.processEvents()
        time.sleep(0.001)
        if time.perf_counter() - start > timeout:
            break
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slide")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--size", default="1600x1000")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    app = QApplication([])
    window = MainWindow(cache_mb=512)
    window.resize(w + 300, h + 60)
    start = time.perf_counter()
    view = window.open_path(args.slide)
    window.show()
    app.processEvents()
    wait_sharp(app, view)
    t_first = time.perf_counter() - start
    rng = np.random.default_rng(0)
    sw, sh = view.slide.dimensions
    mags = [1.25, 5, 10, 20, 40]
    sharp_times, blank_frames = [], 0
    view.frame_times.clear()
    for step in range(args.steps):
        if step % 4 == 0:  # jump: a new region at a new magnification
            view.center_on(float(rng.uniform(0.2, 0.8) * sw), float(rng.uniform(0.2, 0.8) * sh))
            view.set_magnification(mags[(step // 4) % len(mags)])
        else:  # pan by a quarter screen, as the arrow keys do
            dx, dy = [(1, 0), (0, 1), (-1, 0), (0, -1)][step % 4]
            view.set_view(view.view.panned(dx * view.view.width / 4, dy * view.view.height / 4))
        first = from_qimage(view.grab().toImage())
        missing = view.last_exact_missing
        sharp_times.append(wait_sharp(app, view))
        if missing:
            final = from_qimage(view.grab().toImage())
            blank = np.all(first >= 254, axis=-1) & ~np.all(final >= 254, axis=-1)
            blank_frames += bool(blank.mean() > 0.001)
    frames = np.array(view.frame_times) * 1000
    sharp = np.array(sharp_times) * 1000
    print(f"{args.slide}: {sw}x{sh}, view {w}x{h}, {args.steps} steps")
    print(f"open to first complete frame : {t_first * 1000:.0f} ms")
    print(f"paint time p50 / p95         : {np.percentile(frames, 50):.1f} / {np.percentile(frames, 95):.1f} ms ({len(frames)} frames)")
    print(f"frames with blank area       : {blank_frames} of {args.steps} ({blank_frames / args.steps:.0%})")
    print(f"time to sharp p50 / p95      : {np.percentile(sharp, 50):.0f} / {np.percentile(sharp, 95):.0f} ms (goal p95 < 250 ms)")
    window.close()


if __name__ == "__main__":
    main()
