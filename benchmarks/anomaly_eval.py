"""Anomaly evaluation: real tissue with artifacts and foreign tissue injected at known tiles.

Builds two test slides from the real tissue in ../shared/data (CMU-1-Small-Region
mirrored into a 2 x 2 mosaic, and the TCGA frozen section), paints pen strokes (across
the tissue edge, and blue and black ones wholly over tissue: "pen-tissue"), blur,
folds, air bubbles, debris, over- and under-exposure, and patches of the *other*
slide's tissue at random tissue places (pathview.analysis.inject), writes each as a
pyramidal SVS, runs ``analyze_slide`` with the default encoder on the CPU and prints:

- tile-level AUROC per injected kind (its class score vs. clean tiles) and overall
  (the heatmap's score: the highest of all scores, all injected vs. clean tiles);
  tiles covered less than ``--min-cover`` are left out of both sides;
- the precision of the top 10 regions (a region hits when it overlaps an injection;
  "class right" when its class is the injection's);
- whole-slide analysis throughput (tiles/s) against encoding alone on the same tiles.

    .venv/bin/python benchmarks/anomaly_eval.py [--seeds 0 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pathview.analysis.inject import EXPECTED_CLASS, PAINTERS, tile_coverage  # noqa: E402
from pathview.slide import open_slide  # noqa: E402
from pathview.slide.writer import write_image_svs  # noqa: E402

SLIDES = ROOT.parent / "shared" / "data" / "slides"
TILE = 224  # level-0 px of one tile: the test slides are written at 0.5 µm/px
#: Injected kinds, their size in tiles (columns, rows) and how many of each per slide.
PLAN = {"pen": (3, 1), "blur": (2, 2), "fold": (2, 2), "bubble": (2, 2), "debris": (1, 1),
        "overexposure": (2, 2), "underexposure": (2, 2), "foreign": (3, 3)}
PER_SLIDE = 2
#: Pen strokes wholly over solid tissue (blue, then black: the inks nearest haematoxylin and dark stain),
#: placed after PLAN with their own random stream, so the PLAN injections of a seed stay the same.
OVER_TISSUE = {"pen-tissue": (3, 1)}
OVER_TISSUE_INKS = ("blue", "black")
KINDS = {**PLAN, **OVER_TISSUE}
EXPECTED = {**EXPECTED_CLASS, "pen-tissue": "pen"}
#: Debris is scattered particles: a tile counts as injected from a smaller covered share.
MIN_COVER = {"debris": 0.05}


def read_level0(path: Path, mpp: float | None = None) -> np.ndarray:
    with open_slide(path, mpp=mpp) as s:
        w, h = s.dimensions
        return s.read_region((0, 0), 0, (w, h))


def stained_cells(img: np.ndarray) -> np.ndarray:
    """Return the fraction of stained pixels in each TILE x TILE cell (rows, cols)."""
    od = -np.log(np.clip(img.astype(np.float32), 1, 255) / 255.0).sum(-1)
    rows, cols = img.shape[0] // TILE, img.shape[1] // TILE
    cells = (od[:rows * TILE, :cols * TILE] > 0.25).reshape(rows, TILE, cols, TILE)
    return cells.mean((1, 3))


def place(rng: np.random.Generator, stained: np.ndarray, plan: dict[str, tuple[int, int]],
          taken: np.ndarray) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Return (kind, box) injections on tissue, largest first, clear of ``taken`` cells (which it marks)."""
    free = (stained >= 0.6) & ~taken
    placed = []
    for kind, (cw, ch) in sorted(plan.items(), key=lambda kv: -kv[1][0] * kv[1][1]):
        for _ in range(PER_SLIDE):
            # Pen marks are drawn beside the tissue and cross its edge; the rest lies on tissue.
            ok = (lambda r, c: free[r, c:c + cw].any() and (stained[r, c:c + cw] < 0.3).any()
                  and (stained[r, c:c + cw] >= 0.3).sum() >= 1 and not taken[r, c:c + cw].any()) \
                if kind == "pen" else (lambda r, c: free[r:r + ch, c:c + cw].all())
            options = [(r, c) for r in range(free.shape[0] - ch + 1) for c in range(free.shape[1] - cw + 1)
                       if ok(r, c)]
            if not options:
                raise RuntimeError(f"no room left for {kind}")
            r, c = options[int(rng.integers(len(options)))]
            free[r:r + ch, c:c + cw] = False
            taken[r:r + ch, c:c + cw] = True
            placed.append((kind, (c * TILE, r * TILE, cw * TILE, ch * TILE)))
    return placed


def write_slide(img: np.ndarray, path: Path) -> Path:
    return write_image_svs(path, img, mpp=0.5)


def build_case(base: np.ndarray, source: np.ndarray, seed: int, path: Path) -> list[tuple[str, np.ndarray]]:
    """Inject artifacts into a copy of ``base``, write it to ``path``; return (kind, mask) per injection."""
    rng = np.random.default_rng(seed)
    img = base.copy()
    truth = []
    stained = stained_cells(base)
    taken = np.zeros(stained.shape, bool)
    inks = iter(["green", "blue", "black", "green"])
    for kind, box in place(rng, stained, PLAN, taken):
        extra = {"source": source} if kind == "foreign" else {"ink": next(inks)} if kind == "pen" else {}
        truth.append((kind, PAINTERS[kind](img, box, rng, **extra)))
    rng = np.random.default_rng([seed, 1])
    for (kind, box), ink in zip(place(rng, stained, OVER_TISSUE, taken), OVER_TISSUE_INKS * PER_SLIDE):
        truth.append((kind, PAINTERS["pen"](img, box, rng, ink=ink)))
    write_slide(img, path)
    return truth


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Return the Mann-Whitney AUROC of scores ``pos`` above ``neg`` (ties count half)."""
    if not len(pos) or not len(neg):
        return float("nan")
    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def evaluate(out: Path, truth: list[tuple[str, np.ndarray]], min_cover: float) -> dict:
    import h5py

    with h5py.File(out / "tiles.h5", "r") as f:
        coords, size = f["coords"][:], int(f.attrs["patch_size_level0"])
        scores = {"outlier": f["anomaly"][:], **{k[3:]: f[k][:] for k in f.attrs["qc_classes"]}}
        region = f["region"][:]
    cover = {k: np.zeros(len(coords)) for k in KINDS}
    for kind, mask in truth:
        cover[kind] = np.maximum(cover[kind], tile_coverage(mask, coords, size))
    total = np.max(np.stack(list(cover.values())), 0)
    clean = total == 0
    combined = np.max(np.stack(list(scores.values())), 0)
    per_kind = {}
    for kind in KINDS:
        pos = cover[kind] >= MIN_COVER.get(kind, min_cover)
        per_kind[kind] = {"auroc": auroc(scores[EXPECTED[kind]][pos], scores[EXPECTED[kind]][clean]),
                          "tiles": int(pos.sum())}
    injected = np.max(np.stack([cover[k] >= MIN_COVER.get(k, min_cover) for k in KINDS]), 0)
    regions = []
    summary = json.loads((out / "summary.json").read_text())
    for r in summary["top_regions"][:10]:
        tiles = region == r["rank"]
        kinds = [k for k in KINDS if (cover[k][tiles] > 0).any()]
        regions.append({"class": r["class"], "hit": bool(kinds),
                        "class_right": any(EXPECTED[k] == r["class"] for k in kinds)})
    return {"per_kind": per_kind, "overall": auroc(combined[injected], combined[clean]),
            "clean_tiles": int(clean.sum()), "injected_tiles": int(injected.sum()),
            "clean_flagged": float((combined[clean] >= 0.5).mean()), "regions": regions,
            "seconds": summary["timings"]["total_s"], "tiles": summary["tiles"]}


def encode_only(slide_path: Path, encoder, work: Path) -> tuple[int, float]:
    """Return (tiles, seconds) of encoding the same tiles without any scoring."""
    from pathview.analysis.encode import encode_slide
    from pathview.analysis.grid_select import analysis_grid

    with open_slide(slide_path) as s:
        grid = analysis_grid(s, s.thumbnail(1024), 0.5, 224, 0.1).grid
        t0 = time.perf_counter()
        encode_slide(s, grid, encoder, work / "encode-only.h5", device="cpu")
        return len(grid), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--min-cover", type=float, default=0.25, help="tile coverage that makes a tile injected")
    ap.add_argument("--keep", type=Path, help="keep slides and outputs here (default: a temporary folder)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    from pathview.analysis.analyze import analyze_slide
    from pathview.encoders import load_encoder

    torch.set_num_threads(max(1, torch.get_num_threads()))
    cmu = read_level0(SLIDES / "CMU-1-Small-Region.svs")
    cmu = np.concatenate([np.concatenate([cmu, cmu[:, ::-1]], 1), np.concatenate([cmu[::-1], cmu[::-1, ::-1]], 1)], 0)
    tcga = read_level0(SLIDES / "TCGA-CR-7395-01A-01-TS1.svs", mpp=0.5)
    bases = {"cmu-mosaic": (cmu, tcga), "tcga": (tcga, cmu)}
    encoder = load_encoder("pathview-he", device="cpu")
    work = args.keep or Path(tempfile.mkdtemp(prefix="pathview-anomaly-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        for name, (base, source) in bases.items():
            slide = work / f"{name}-seed{seed}.svs"
            truth = build_case(base, source, seed, slide)
            out = work / f"{name}-seed{seed}"
            analyze_slide(slide, out, encoder=encoder, device="cpu")
            res = evaluate(out, truth, args.min_cover)
            res["case"] = f"{name} seed {seed}"
            res["encode_tiles"], res["encode_seconds"] = encode_only(slide, encoder, work)
            results.append(res)
    report(results, args.json)


def report(results: list[dict], as_json: bool) -> None:
    kinds = list(KINDS)
    mean = {k: float(np.nanmean([r["per_kind"][k]["auroc"] for r in results])) for k in kinds}
    overall = float(np.mean([r["overall"] for r in results]))
    top = [g for r in results for g in r["regions"]]
    tiles = sum(r["tiles"] for r in results)
    analysis_rate = tiles / sum(r["seconds"] for r in results)
    encode_rate = sum(r["encode_tiles"] for r in results) / sum(r["encode_seconds"] for r in results)
    if as_json:
        print(json.dumps({"results": results, "mean_auroc": mean, "overall_auroc": overall}, indent=2))
        return
    print(f"{'case':<22s}" + "".join(f"{k[:10]:>11s}" for k in kinds) + f"{'overall':>10s}{'clean>=.5':>10s}")
    for r in results:
        print(f"{r['case']:<22s}" + "".join(f"{r['per_kind'][k]['auroc']:11.3f}" for k in kinds)
              + f"{r['overall']:10.3f}{r['clean_flagged']:10.3f}")
    print(f"{'mean':<22s}" + "".join(f"{mean[k]:11.3f}" for k in kinds) + f"{overall:10.3f}")
    print(f"positive tiles per case: " + ", ".join(
        f"{k} {int(np.mean([r['per_kind'][k]['tiles'] for r in results]))}" for k in kinds)
          + f"; clean {int(np.mean([r['clean_tiles'] for r in results]))}")
    print(f"top-10 regions: precision {np.mean([g['hit'] for g in top]):.2f} (overlaps an injection), "
          f"{np.mean([g['class_right'] for g in top]):.2f} with the right class, over {len(top)} regions")
    print(f"throughput (CPU, pathview-he): analysis {analysis_rate:.1f} tiles/s end to end "
          f"(tissue, encoding + QC, scoring, writing), encoding alone {encode_rate:.1f} tiles/s "
          f"-> analysis costs {encode_rate / analysis_rate:.2f}x the encoding")


if __name__ == "__main__":
    main()
