"""Annotations at scale: importing 100,000 polygons (and, with --part pan, panning over them).

``import``: writes a QuPath GeoJSON of 100,000 nucleus-like polygons (24 vertices,
classified detections with two measurements, as QuPath exports cells) and times
``pathview.findings.interchange.import_files`` into a fresh store (parse, build,
validate, one transaction) against the naive way: ``json.load``, one
``shapely.geometry.shape`` and validity check per feature, and one INSERT + commit per
feature into the same kind of SQLite database (WAL, synchronous=FULL). The naive way
runs on a subset and is extrapolated (it is stated in the output). Goal: under 5 s
(napari takes 14-15 s for 100k nuclei).

    .venv/bin/python benchmarks/annotations.py --part import [--slide benchmarks/data/large-40x.svs]

``pan``: viewer frame time p50/p95 while panning with 100,000 polygons, against drawing every
polygon every frame (see ``annotation_pan.py``).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/annotations.py --part pan
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape

from pathview.findings import FindingsStore
from pathview.findings.interchange import import_files
from pathview.slide.info import SlideInfo

from annotation_pan import bench_pan  # noqa: E402  (benchmarks/ is on the path when run as a script)

DATA = Path(__file__).parent / "data"


def write_nuclei_geojson(path: Path, count: int, width: int, height: int, seed: int = 0) -> None:
    """Write ``count`` nucleus-like polygons (QuPath detections) spread over a width x height slide."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    centres = rng.uniform((50, 50), (width - 50, height - 50), size=(count, 2))
    radii = rng.uniform(4, 9, size=(count, 1)) * rng.uniform(0.85, 1.15, size=(count, 24))
    classes = [("Tumor", [200, 0, 0]), ("Stroma", [150, 200, 150]), ("Inflammation", [160, 90, 160])]
    features = []
    for i in range(count):
        ring = np.round(np.c_[centres[i, 0] + radii[i] * np.cos(angles), centres[i, 1] + radii[i] * np.sin(angles)], 2)
        coords = ring.tolist() + [ring[0].tolist()]
        name, color = classes[i % 3]
        poly = shapely.Polygon(coords)
        features.append({"type": "Feature", "id": f"cell-{i}", "geometry": {"type": "Polygon", "coordinates": [coords]},
                         "properties": {"objectType": "detection", "classification": {"name": name, "color": color},
                                        "measurements": {"Area px^2": round(poly.area, 2),
                                                         "Perimeter px": round(poly.length, 2)}}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))


def naive_import(path: Path, db: Path, limit: int) -> tuple[float, float, int]:
    """The straightforward way: parse the whole file, then store the first ``limit`` features.

    Return (parse seconds, seconds for the features stored, features stored).
    """
    start = time.perf_counter()
    doc = json.loads(path.read_text())
    parsed = time.perf_counter()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, slide TEXT, class TEXT, props TEXT, wkb BLOB)")
    done = 0
    for feature in doc["features"][:limit]:
        geom = shape(feature["geometry"])
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
        props = feature["properties"]
        conn.execute("INSERT INTO a (slide, class, props, wkb) VALUES (?, ?, ?, ?)",
                     ("qh", props["classification"]["name"], json.dumps(props), geom.wkb))
        conn.commit()
        done += 1
    conn.close()
    return parsed - start, time.perf_counter() - parsed, done


def bench_import(args: argparse.Namespace) -> None:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"nuclei-{args.count}.geojson"
    width, height = 50_000, 40_000
    if not path.exists():
        print(f"writing {path} ...", flush=True)
        write_nuclei_geojson(path, args.count, width, height)
    print(f"{path.name}: {args.count:,} polygons, {path.stat().st_size / 1e6:.0f} MB")
    info = SlideInfo(path="virtual", vendor="none", dimensions=(width, height), level_dimensions=((width, height),),
                     level_downsamples=(1.0,), mpp=0.25, mpp_source="slide", objective_power=40.0,
                     objective_source="slide", quickhash="benchmark", associated_images=(), has_icc_profile=False)
    times, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.repeat):
            with FindingsStore(Path(tmp) / f"run{run}.sqlite") as store:
                start, start_cpu = time.perf_counter(), time.process_time()
                report = import_files(store, info, [path])
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
                assert store.count("benchmark") == args.count == report.count
        fast = min(times)
        print(f"pathview import_files: {fast:.2f} s for {args.count:,} ({args.count / fast:,.0f}/s; CPU "
              f"{min(cpu):.2f} s); runs: {', '.join(f'{t:.2f}' for t in times)}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        parse_s, store_s, done = naive_import(path, Path(tmp) / "naive.sqlite", args.naive_subset)
        naive_total = parse_s + store_s / done * args.count
        note = "" if done == args.count else \
            f" (parse {parse_s:.1f} s; stored {done:,} features in {store_s:.1f} s, extrapolated to all)"
        print(f"naive (json.load + shape() + INSERT/commit per feature): {naive_total:.1f} s for {args.count:,}{note}")
        goal = f"; goal < 5 s for 100,000: {'met' if fast < 5 else 'NOT met'}" if args.count == 100_000 else ""
        print(f"ratio: {naive_total / fast:.1f}x faster{goal}")
    if args.slide:
        ws = tempfile.mkdtemp()
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "pathview", "import", args.slide, str(path), "--workspace", ws],
                             capture_output=True, text=True)
        print(f"`pathview import {Path(args.slide).name} {path.name}` end to end (process start, slide open, "
              f"import): {time.perf_counter() - start:.2f} s (exit {res.returncode})")


#: Benchmark parts by name; `--part all` runs each in turn.
PARTS: dict[str, Callable[[argparse.Namespace], None]] = {"import": bench_import, "pan": bench_pan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--count", type=int, default=100_000, help="polygons in the generated file")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of pathview's import (best is reported)")
    parser.add_argument("--naive-subset", type=int, default=5_000, help="features the naive way runs (extrapolated)")
    parser.add_argument("--slide", help="import: also time `pathview import` on this slide; pan: the slide to pan "
                                        "(default benchmarks/data/large-40x.svs)")
    parser.add_argument("--frames", type=int, default=60, help="pan: frames timed per zoom")
    parser.add_argument("--naive-frames", type=int, default=3, help="pan: frames of the naive drawing per zoom")
    args = parser.parse_args()
    for name, part in PARTS.items():
        if args.part in (name, "all"):
            part(args)


if __name__ == "__main__":
    main()
