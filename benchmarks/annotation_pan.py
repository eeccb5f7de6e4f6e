"""The ``pan`` part of ``annotations.py``: viewer frame time while panning over 100,000 polygons.

100,000 nucleus-like polygons (24 vertices, three classes) are packed into a 16,000 x
12,000 px tumour-like region of a 50,000 x 40,000 slide (about one nucleus per 120 µm²
at 0.25 µm/px, as in a cellular tumour) and stored in a fresh workspace. The real window
(offscreen) then pans over them at three zooms: the whole slide (all 100,000 in view,
drawn as dots), 4 level-0 px per screen px (~10,000 in view, most drawn as outlines) and
1.5 (the largest outlines). Each frame is the whole paint: slide tiles, annotations,
scale bar. The naive way, for comparison, keeps every polygon as a ready QPolygonF and
draws all of them every frame (no spatial query, no level of detail, no tile cache).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REGION = (17_000, 14_000, 33_000, 26_000)  # the packed region, level-0 px


def dense_nuclei(count: int, seed: int = 0) -> list:
    """Return ``count`` nucleus polygons (Annotation objects) packed into REGION."""
    from pathview.findings import Annotation

    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = REGION
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    centres = rng.uniform((x0, y0), (x1, y1), size=(count, 2))
    radii = rng.uniform(4, 9, size=(count, 1)) * rng.uniform(0.85, 1.15, size=(count, 24))
    rings = np.stack([centres[:, :1] + radii * np.cos(angles), centres[:, 1:] + radii * np.sin(angles)], axis=-1)
    polygons = shapely.polygons(rings)
    classes = ("Tumor", "Stroma", "Inflammation")
    return [Annotation(p, kind="polygon", class_name=classes[i % 3], object_type="detection")
            for i, p in enumerate(polygons)]


class Timed:
    """Wrap a layer and keep the time each of its paints took."""

    def __init__(self, layer) -> None:
        self.layer, self.times = layer, []

    @property
    def visible(self) -> bool:
        return self.layer.visible

    @property
    def pending(self) -> bool:
        return getattr(self.layer, "pending", False)

    def paint(self, painter, view) -> None:
        start = time.perf_counter()
        self.layer.paint(painter, view)
        self.times.append(time.perf_counter() - start)


class NaiveLayer:
    """Every polygon, every frame: the straightforward way to paint annotations."""

    def __init__(self, annotations: list, colors: dict) -> None:
        from PySide6.QtGui import QColor, QPolygonF
        from PySide6.QtCore import QPointF

        self.visible = True
        self.items = [(QPolygonF([QPointF(x, y) for x, y in a.geometry.exterior.coords]),
                       QColor(*a.display_color(colors))) for a in annotations]

    def paint(self, painter, view) -> None:
        from PySide6.QtGui import QColor, QPainter, QPen

        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.scale(1 / view.downsample, 1 / view.downsample)
        painter.translate(-view.x0, -view.y0)
        for polygon, color in self.items:
            pen = QPen(color, 2)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(QColor(color.red(), color.green(), color.blue(), 55))
            painter.drawPolygon(polygon)
        painter.restore()


def _pan(app, view, layer, downsample: float, frames: int) -> tuple[list[float], list[float], int, float]:
    """Pan across the region in ``frames`` steps (40 screen px, less when the region is narrower on
    screen); return frame times, the layer's share, frames that left annotation tiles for later,
    and the mean number of objects in view."""
    from pathview.viewport import Viewport

    x0, y0, x1, y1 = REGION
    v = view.view
    step = min(40.0, (x1 - x0) / downsample / frames)
    view.set_view(Viewport((x0 + x1) / 2 - frames * step / 2 * downsample, (y0 + y1) / 2, downsample, v.width, v.height))
    times, unfinished, in_view = [], 0, []
    timed = Timed(layer)
    view.add_layer(timed)
    for _ in range(frames):
        view.set_view(view.view.panned(step, 0))
        start = time.perf_counter()
        view.repaint()
        times.append(time.perf_counter() - start)
        unfinished += bool(getattr(layer, "pending", False))
        a, b = view.view.to_level0(0, 0), view.view.to_level0(view.view.width, view.view.height)
        in_view.append(len(view.annotation_scene.query(*a, *b)))
        app.processEvents()
    view.remove_layer(timed)
    return times, timed.times[-frames:], unfinished, float(np.mean(in_view))


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000)


def bench_pan(args: argparse.Namespace) -> None:
    from PySide6.QtWidgets import QApplication

    from pathview.app.main_window import MainWindow
    from pathview.viewport import fit_viewport

    slide = Path(args.slide or Path(__file__).parent / "data" / "large-40x.svs")
    if not slide.exists():
        raise SystemExit(f"{slide} is missing: make it with benchmarks/make_large_slide.py (see benchmarks/README.md)")
    app = QApplication.instance() or QApplication([])
    workspace = tempfile.mkdtemp(prefix="pathview-pan-")
    window = MainWindow(cache_mb=256, workspace=workspace)
    window.resize(1400, 900)
    window.show()
    view = window.open_path(str(slide))
    ctl = window.annotations.controller
    nuclei = dense_nuclei(args.count)
    start = time.perf_counter()
    ctl.store.add_many(view.slide.quickhash, nuclei)
    while len(ctl.scene) < args.count:  # the viewer reloads its scene off the GUI thread
        app.processEvents()
        time.sleep(0.01)
    print(f"{args.count:,} polygons stored and loaded into the viewer in {time.perf_counter() - start:.1f} s; "
          f"window {view.width()} x {view.height()} px, {os.cpu_count()} CPUs")
    view.annotation_scene = ctl.scene
    fit = fit_viewport(view.slide.dimensions, view.view.width, view.view.height).downsample
    naive = NaiveLayer(nuclei, ctl.class_colors())
    layer = ctl.layer
    view.remove_layer(layer)  # _pan adds the layer it times
    print("frame = the whole paint (slide tiles + annotations); layer = the annotations' share")
    for label, ds in (("whole slide", fit), ("4 level-0 px per px", 4.0), ("1.5 level-0 px per px", 1.5)):
        times, layer_times, unfinished, in_view = _pan(app, view, layer, ds, args.frames)
        naive_times, naive_layer, _, _ = _pan(app, view, naive, ds, args.naive_frames)
        p95, naive_p95 = _ms(times, 95), _ms(naive_times, 95)
        print(f"{label:22s} {in_view:7,.0f} in view | pathview frame p50 {_ms(times, 50):5.1f} p95 {p95:5.1f} ms, "
              f"layer p95 {_ms(layer_times, 95):5.1f} ms ({unfinished}/{len(times)} frames left tiles for the next) | "
              f"naive frame p50 {_ms(naive_times, 50):5.0f} p95 {naive_p95:5.0f} ms | p95 ratio {naive_p95 / p95:.0f}x"
              f" | goal p95 < 50 ms: {'met' if p95 < 50 else 'NOT met'}")
    view.add_layer(layer)
    window.close()
