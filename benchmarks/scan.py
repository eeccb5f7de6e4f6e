"""Benchmark `pathview scan` against analysing the same slides one process per slide.

The naive way a lab scripts a cohort: a loop that runs ``pathview analyze SLIDE -o
DIR`` for each slide, so every slide pays a fresh interpreter, imports and an
encoder load, and nothing overlaps. ``pathview scan`` loads the encoder once per
worker and reads the next slide while the current one encodes. Both are timed as
whole commands (process start included) on the same slides and settings, in one
run on one machine; the result is slides/hour for each and their ratio. On a
machine with ``nvidia-smi``, GPU utilisation is sampled every 200 ms during each.

    python benchmarks/scan.py                      # the good slides of ../shared/data + the demo slide
    python benchmarks/scan.py SLIDE_OR_FOLDER... --encoder uni --device cuda --tile-mpp 0.5 --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "slides"
DEFAULT_SLIDES = [DATA / "CMU-1-Small-Region.svs", DATA / "CMU-1-Small-Region-dicom", DATA / "camelyon-lowres.dcm",
                  DATA / "bone-marrow-dicom-codecs" / "jpeg.dcm", DATA / "bone-marrow-dicom-codecs" / "jpeg2000.dcm",
                  DATA / "bone-marrow-dicom-codecs" / "raw.dcm"]


class GpuSampler:
    """Sample GPU utilisation with nvidia-smi on a thread; mean() over the samples taken."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.proc = None
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                          "-lms", "200"], stdout=subprocess.PIPE, text=True)
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.samples.append(float(line.split(",")[0]))
            except ValueError:
                pass

    def stop(self) -> float | None:
        if self.proc is None:
            return None
        self.proc.terminate()
        self.proc.wait()
        return round(sum(self.samples) / len(self.samples), 1) if self.samples else None


def timed(commands: list[list[str]]) -> tuple[float, float | None]:
    """Run ``commands`` one after the other; return the seconds and the mean GPU utilisation."""
    gpu = GpuSampler()
    t0 = time.perf_counter()
    for cmd in commands:
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode not in (0, 3):
            sys.exit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0, gpu.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("slides", nargs="*", type=Path, help="slides (default: small real slides + the demo slide)")
    ap.add_argument("--encoder", default="pathview-he")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tile-mpp", type=float, default=0.5)
    ap.add_argument("--workers", type=int, default=1, help="pathview scan --workers")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pathview-scan-bench-"))
    slides = list(args.slides)
    if not slides:
        from pathview.slide.demo import demo_slide_path

        slides = [*DEFAULT_SLIDES, demo_slide_path(work / "demo")]
    py = [sys.executable, "-m", "pathview"]
    common = ["--encoder", args.encoder, "--device", args.device, "-q"]
    naive = [[*py, "analyze", str(s), "-o", str(work / "naive" / str(i)), "--mpp", str(args.tile_mpp), *common]
             for i, s in enumerate(slides)]
    scan = [[*py, "scan", *map(str, slides), "-o", str(work / "scan"), "--tile-mpp", str(args.tile_mpp),
             "--workers", str(args.workers), *common]]

    print(f"{len(slides)} slides, {args.encoder} on {args.device}, tiles at {args.tile_mpp} µm/px", file=sys.stderr)
    naive_s, naive_gpu = timed(naive)
    scan_s, scan_gpu = timed(scan)
    with open(work / "scan" / "scan.csv", newline="") as f:
        tiles = sum(int(r["tiles"]) for r in csv.DictReader(f) if r["status"] == "ok")
    result = {
        "slides": len(slides), "tiles": tiles, "encoder": args.encoder, "device": args.device,
        "tile_mpp": args.tile_mpp, "workers": args.workers, "machine": platform.node(),
        "naive_s": round(naive_s, 2), "scan_s": round(scan_s, 2),
        "naive_slides_per_hour": round(len(slides) * 3600 / naive_s),
        "scan_slides_per_hour": round(len(slides) * 3600 / scan_s),
        "speedup": round(naive_s / scan_s, 2), "naive_gpu_util_pct": naive_gpu, "scan_gpu_util_pct": scan_gpu,
    }
    print(f"one process per slide: {naive_s:6.1f} s  {result['naive_slides_per_hour']:6d} slides/h"
          + (f"  GPU {naive_gpu}%" if naive_gpu is not None else ""))
    print(f"pathview scan:         {scan_s:6.1f} s  {result['scan_slides_per_hour']:6d} slides/h"
          + (f"  GPU {scan_gpu}%" if scan_gpu is not None else ""))
    print(f"ratio: {result['speedup']}x ({tiles} tiles in all)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
