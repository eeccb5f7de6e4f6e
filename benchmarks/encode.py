"""Benchmark tile encoding: model-only vs end-to-end on a GPU, pipeline vs naive loop on the CPU.

One run, one machine, two measures (issue #5):

1. GPU (``--device cuda``), for each of ``--encoders`` built at real size with random
   weights (speed does not depend on the values), bf16 autocast, channels-last,
   optionally ``--compile``:
   - model-only tiles/s: a synthetic uint8 batch already on the GPU, the same module
     (normalisation and resizing on the GPU included), timed for ``--seconds``;
   - end-to-end tiles/s: ``encode_slide`` on ``--slide`` (tissue tiles, or the first
     ``--max-tiles``): readers (``--readers``), pinned memory, async copies, tiles.h5 written;
   - their ratio (goal: >= 0.8; UNI end to end >= 2,500 tiles/s on one H100).
   Before them, the readers alone (``--reader-tiles`` tiles packed into batches, no model):
   threads against processes, so a slow end-to-end run says whether reading is the limit.
2. CPU: the default encoder (pathview-he) end to end against the naive loop
   (``read_tile_naive`` + encoding one tile at a time) on the same tiles, as a ratio.

GPU run (the large slide from benchmarks/make_large_slide.py):

    python benchmarks/make_large_slide.py --magnification 20 -o benchmarks/data/large-20x.svs
    python benchmarks/encode.py --slide benchmarks/data/large-20x.svs --device cuda \\
        --encoders uni,h-optimus-0 --batch-size 256 --workers 12 --seconds 20 --json benchmarks/data/encode.json

Smoke test on a CPU (tiny model, small slide):

    python benchmarks/encode.py --slide ../shared/data/slides/CMU-1-Small-Region.svs --device cpu \\
        --encoders uni --tiny --seconds 2 --max-tiles 64 --cpu-tiles 48
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pathview.analysis.encode import READER_KINDS, encode_slide, use_reader_processes
from pathview.analysis.prefetch import TilePrefetcher
from pathview.analysis.runner import BatchRunner, resolve_device
from pathview.encoders import DEFAULT_ENCODER, load_encoder
from pathview.slide import TileGrid, detect_tissue, open_slide, tile_grid
from pathview.slide.tile_reader import read_tile_naive


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def make_grid(slide, mpp: float, size: int, max_tiles: int | None) -> TileGrid:
    grid = tile_grid(slide, mpp=mpp, size=size, mask=detect_tissue(slide), min_tissue=0.1)
    if max_tiles and len(grid) > max_tiles:
        grid = grid.subset(np.arange(max_tiles))
    return grid


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_only(runner: BatchRunner, size: int, seconds: float) -> dict:
    """Tiles/s of the encoder module alone on a device-resident uint8 batch (after warm-up)."""
    dev = runner.device
    x = torch.randint(0, 256, (runner.batch_size, size, size, 3), dtype=torch.uint8, device=dev)
    t = time.perf_counter()
    for _ in range(3):  # warm-up: cuDNN autotune, torch.compile, allocator
        runner(x)
    sync(dev)
    warm_s = time.perf_counter() - t
    x = x[:runner.batch_size]  # out-of-memory during warm-up may have halved the batch
    n, t0 = 0, time.perf_counter()
    while True:
        runner(x)
        n += len(x)
        if n % (len(x) * 4) == 0:
            sync(dev)
            if time.perf_counter() - t0 >= seconds:
                break
    sync(dev)
    dt = time.perf_counter() - t0
    return {"tiles": n, "seconds": round(dt, 3), "tiles_per_s": n / dt, "warmup_s": round(warm_s, 2),
            "batch_size": runner.batch_size}


def readers_only(slide, grid: TileGrid, batch_size: int, workers: int, pin: bool) -> dict:
    """Tiles/s of the readers alone, packing the grid into (pinned) batches: threads vs processes."""
    rates = {}
    for kind in ("threads", "processes"):
        t0 = time.perf_counter()
        with TilePrefetcher(slide, grid, batch_size, workers=workers, pin=pin, processes=kind == "processes") as pf:
            for batch in pf:
                pf.release(batch)
        rates[kind] = len(grid) / (time.perf_counter() - t0)
        log(f"[readers] {kind}: {rates[kind]:.0f} tiles/s ({len(grid)} tiles, {workers} workers)")
    return {"tiles": len(grid), "workers": workers, **{f"{k}_tiles_per_s": v for k, v in rates.items()},
            "ratio": rates["processes"] / rates["threads"]}


def end_to_end(slide, grid: TileGrid, runner: BatchRunner, workers: int, readers: str) -> dict:
    """Tiles/s of the whole pipeline, slide to tiles.h5, reusing the warmed-up runner."""
    events = []

    def on_progress(e) -> None:
        events.append((time.perf_counter(), e.done, e.kind))

    with tempfile.TemporaryDirectory(prefix="pathview-bench-") as tmp:
        res = encode_slide(slide, grid, runner.encoder, tmp, workers=workers, readers=readers, runner=runner,
                           progress=on_progress)
    batches = [(t, d) for t, d, k in events if k == "batch"]
    steady = None
    if len(batches) >= 4:  # from the first written batch to the last: excludes reader start-up
        (t1, d1), (t2, d2) = batches[0], batches[-1]
        steady = (d2 - d1) / max(t2 - t1, 1e-9)
    return {"tiles": res.tiles, "seconds": round(res.seconds, 3), "tiles_per_s": res.tiles_per_s,
            "steady_tiles_per_s": steady, "batch_size": res.batch_size,
            "readers": "processes" if use_reader_processes(readers, runner.device, len(grid), workers) else "threads"}


def e2e_tiles(grid_tiles: int, model_rate: float, batch: int, args) -> int:
    """Tiles for the end-to-end runs: all of the grid, or what ``--e2e-seconds`` at model-only speed encodes
    (at least 8 batches), so a slow giant model and a fast one both run for about as long."""
    n = grid_tiles if args.max_tiles is None else min(grid_tiles, args.max_tiles)
    if args.e2e_seconds:
        n = min(n, max(8 * batch, int(model_rate * args.e2e_seconds)))
    return n


def gpu_section(args, slide, device: torch.device, save=lambda rows: None) -> list[dict]:
    """Model-only, then end to end with each of ``--readers``, for each encoder; ``save`` gets the rows
    after each encoder, so a run cut short still leaves its figures."""
    rows = []
    for name in [n.strip() for n in args.encoders.split(",") if n.strip()]:
        log(f"[{name}] building at {'tiny' if args.tiny else 'real'} size with random weights on {device}...")
        t = time.perf_counter()
        torch.manual_seed(0)
        enc = load_encoder(name, device=device, random_weights=True, tiny=args.tiny)
        build_s = time.perf_counter() - t
        size = args.size or enc.spec.resize_to or enc.spec.input_size
        mpp = args.mpp or enc.spec.mpp
        grid = make_grid(slide, mpp, size, None)
        runner = BatchRunner(enc, device, args.batch_size, compile=args.compile)
        log(f"[{name}] {sum(p.numel() for p in enc.module.parameters()) / 1e6:.0f}M params, built in {build_s:.1f} s; "
            f"model-only for {args.seconds} s (batch {runner.batch_size}, amp {runner.amp}, compile {args.compile})...")
        mo = model_only(runner, size, args.seconds)
        n = e2e_tiles(len(grid), mo["tiles_per_s"], runner.batch_size, args)
        grid = grid.subset(np.arange(n)) if n < len(grid) else grid
        for readers in args.readers.split(","):
            log(f"[{name}] model-only {mo['tiles_per_s']:.0f} tiles/s; end to end on {len(grid)} tiles ({readers})...")
            e2e = end_to_end(slide, grid, runner, args.workers, readers)
            ratio = e2e["tiles_per_s"] / mo["tiles_per_s"]
            rows.append({"encoder": name, "tiny": args.tiny, "device": str(device), "tile_px": size, "mpp": mpp,
                         "amp": str(runner.amp), "compile": args.compile, "workers": args.workers,
                         "readers": e2e["readers"],
                         "model_only": mo, "end_to_end": e2e, "ratio": ratio})
            log(f"[{name}] end to end {e2e['tiles_per_s']:.0f} tiles/s "
                f"(steady {e2e['steady_tiles_per_s'] or 0:.0f}); ratio {ratio:.2f}")
        save(rows)
        del runner, enc
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def naive_loop(slide, grid: TileGrid, module: torch.nn.Module) -> float:
    """Tiles/s of the naive way: one level-0 read + resize and one encoder call per tile."""
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(len(grid)):
            tile = read_tile_naive(slide, grid, i)
            module(torch.from_numpy(tile)[None])
    return len(grid) / (time.perf_counter() - t0)


def cpu_section(args, slide) -> dict:
    enc = load_encoder(DEFAULT_ENCODER, device="cpu")
    size = args.size or enc.spec.input_size
    grid = make_grid(slide, args.mpp or enc.spec.mpp, size, args.cpu_tiles)
    log(f"[cpu] {DEFAULT_ENCODER}: pipeline vs naive loop on {len(grid)} tiles, {os.cpu_count()} cores...")
    with tempfile.TemporaryDirectory(prefix="pathview-bench-") as tmp:
        pipe = encode_slide(slide, grid, enc, tmp, device="cpu", workers=args.cpu_workers).tiles_per_s
    naive = naive_loop(slide, grid, enc.module)
    row = {"encoder": DEFAULT_ENCODER, "tiles": len(grid), "pipeline_tiles_per_s": pipe,
           "naive_tiles_per_s": naive, "ratio": pipe / naive, "workers": args.cpu_workers}
    log(f"[cpu] pipeline {pipe:.0f} tiles/s, naive {naive:.0f} tiles/s; ratio {row['ratio']:.2f}")
    return row


def report(meta: dict, reader_row: dict | None, gpu_rows: list[dict], cpu_row: dict | None) -> str:
    lines = [f"machine: {meta['machine']}", f"slide: {meta['slide']} ({meta['slide_px']})", ""]
    if reader_row:
        lines += [f"readers alone ({reader_row['tiles']} tiles, {reader_row['workers']} workers): threads "
                  f"{reader_row['threads_tiles_per_s']:.0f} tiles/s, processes {reader_row['processes_tiles_per_s']:.0f}"
                  f" tiles/s = {reader_row['ratio']:.2f}x", ""]
    if gpu_rows:
        lines.append(f"{'encoder':16s} {'device':8s} {'batch':>5s} {'readers':>9s} {'model-only':>11s} "
                     f"{'end-to-end':>11s} {'steady':>8s} {'ratio':>6s}  goal")
        for r in gpu_rows:
            e2e = r["end_to_end"]["tiles_per_s"]
            goal = "ratio>=0.80 " + ("met" if r["ratio"] >= 0.8 else "NOT met")
            if r["encoder"] == "uni" and not r["tiny"]:
                goal += "; uni>=2500/s " + ("met" if e2e >= 2500 else "NOT met")
            lines.append(f"{r['encoder'] + (' (tiny)' if r['tiny'] else ''):16s} {r['device']:8s} "
                         f"{r['model_only']['batch_size']:5d} {r['readers']:>9s} {r['model_only']['tiles_per_s']:9.0f}/s "
                         f"{e2e:9.0f}/s {r['end_to_end']['steady_tiles_per_s'] or 0:6.0f}/s {r['ratio']:6.2f}  {goal}")
    if cpu_row:
        lines.append("")
        lines.append(f"cpu {cpu_row['encoder']}: pipeline {cpu_row['pipeline_tiles_per_s']:.0f} tiles/s vs naive "
                     f"loop {cpu_row['naive_tiles_per_s']:.0f} tiles/s = {cpu_row['ratio']:.2f}x "
                     f"({cpu_row['tiles']} tiles, {meta['machine']['cpus']} cores)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--slide", type=Path, help="slide to read (default: the built-in demo slide)")
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu (for the model measures)")
    p.add_argument("--encoders", default="uni,h-optimus-0", help="comma-separated registry names ('' to skip)")
    p.add_argument("--batch-size", type=int, default=None, help="model batch (default: 256 on GPU, halved on OOM)")
    p.add_argument("--seconds", type=float, default=15.0, help="model-only timing length")
    p.add_argument("--max-tiles", type=int, default=None, help="cap on end-to-end tiles")
    p.add_argument("--workers", type=int, default=min(12, os.cpu_count() or 4), help="readers (GPU runs)")
    p.add_argument("--readers", default="auto", type=reader_kinds,
                   help="end-to-end readers, comma-separated for one run each: auto (processes on a GPU for "
                        "large grids), threads, processes")
    p.add_argument("--e2e-seconds", type=float, default=None,
                   help="cap end-to-end tiles at what model-only speed encodes in this time")
    p.add_argument("--reader-tiles", type=int, default=8000, help="tiles for readers alone (0 to skip)")
    p.add_argument("--mpp", type=float, default=None, help="tile mpp (default: the encoder's, 0.5)")
    p.add_argument("--size", type=int, default=None, help="tile px (default: the encoder's input)")
    p.add_argument("--compile", action="store_true", help="torch.compile the encoders")
    p.add_argument("--tiny", action="store_true", help="tiny models (smoke test only)")
    p.add_argument("--cpu-tiles", type=int, default=1000, help="tiles for the CPU comparison (0 to skip)")
    p.add_argument("--cpu-workers", type=int, default=4, help="reader threads of the CPU pipeline")
    p.add_argument("--slide-mpp", type=float, default=None, help="pixel size for slides that record none")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)

    slide_path = args.slide
    if slide_path is None:
        from pathview.slide.demo import demo_slide_path

        slide_path = demo_slide_path()
    device = resolve_device(args.device)
    if device.type == "cuda" and not args.tiny and "h-optimus" in args.encoders and (torch.cuda.get_device_properties(
            device).total_memory < 20 * 2**30):
        log("warning: less than 20 GB of GPU memory; giant models may halve their batch on out-of-memory")
    meta = {"machine": machine(), "slide": str(slide_path), "args": {k: str(v) for k, v in vars(args).items()}}
    results = {**meta, "readers": None, "gpu": [], "cpu": None}

    def save(**part) -> None:
        results.update(part)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2))

    with open_slide(slide_path, mpp=args.slide_mpp) as slide:
        meta["slide_px"] = results["slide_px"] = "x".join(map(str, slide.dimensions))
        if args.reader_tiles:
            grid = make_grid(slide, args.mpp or 0.5, args.size or 224, args.reader_tiles)
            save(readers=readers_only(slide, grid, args.batch_size or 256, args.workers, pin=device.type == "cuda"))
        if args.encoders:
            gpu_section(args, slide, device, save=lambda rows: save(gpu=rows))
        if args.cpu_tiles:
            save(cpu=cpu_section(args, slide))
    text = report(meta, results["readers"], results["gpu"], results["cpu"])
    print(text)
    save(report=text)
    return 0


def reader_kinds(text: str) -> str:
    """argparse type for ``--readers``: a comma-separated list of auto, threads, processes."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    if not kinds or any(k not in READER_KINDS for k in kinds):
        raise argparse.ArgumentTypeError(f"expected {', '.join(READER_KINDS)} (comma-separated), got {text!r}")
    return ",".join(kinds)


if __name__ == "__main__":
    sys.exit(main())
