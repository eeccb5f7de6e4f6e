"""Analyse one slide into the scan output folder: tiles, features, artifact QC, outliers, regions.

:func:`analyze_slide` is the per-slide unit the viewer's background run and the batch
scanner both call. It reads each tile once (the encoder's read also feeds artifact QC),
then writes ``tiles.h5``, ``findings.geojson``, ``heatmap.png``, ``thumbnail.png`` and,
last, ``summary.json`` into the output folder, each atomically (temporary name, then
rename). ``summary.json`` is removed first and written last, so a folder without it is
unfinished; its ``settings`` say what a rerun must match to be skipped
(:func:`is_current`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..errors import PathviewError
from ..wording import count
from .artifacts import ARTIFACT_CLASSES, MEASURES, artifact_scores, tile_measures
from .grid_select import analysis_grid
from .outputs import FINDINGS_FILE, HEATMAP_FILE, SUMMARY_FILE, THUMBNAIL_FILE, TILES_FILE, atomic_write
from .regions import THRESHOLD, find_regions, region_index

if TYPE_CHECKING:
    from ..encoders import LoadedEncoder
    from .reference import ReferenceBank

#: Bumped when scores change meaning, so batch runs recompute older outputs.
ANALYSIS_VERSION = 3  # 2: fold and pen-over-tissue measures; 3: ink bands over tissue, edge tiles vs edge tiles
THUMBNAIL_SIZE = 1024


@dataclass(frozen=True)
class AnalyzeEvent:
    """One progress event. ``stage``: ``start``, ``tissue``, ``encode``, ``score``, ``write`` or ``done``.

    During ``encode``, ``done``/``total`` count tiles; otherwise they count stages.
    """

    stage: str
    done: int
    total: int
    message: str = ""
    tiles_per_s: float = 0.0


class AnalysisCancelled(PathviewError):
    """The run was cancelled; the folder has no ``summary.json`` (older outputs may remain, marked unfinished)."""

    def __init__(self, slide: str | os.PathLike, done: int, total: int) -> None:
        self.slide, self.done, self.total = Path(slide), done, total
        super().__init__(f"analysis of '{self.slide.name}' cancelled after {done} of {total} tiles; nothing finished")


ProgressFn = Callable[[AnalyzeEvent], None]


def analysis_settings(encoder: str, tile_mpp: float, tile_size: int, min_tissue: float, slide_mpp: float,
                      mpp_source: str, reference: str | None) -> dict[str, Any]:
    """Return the settings recorded in ``summary.json``: a rerun with equal settings may be skipped."""
    return {"encoder": encoder, "tile_mpp": float(tile_mpp), "tile_size": int(tile_size),
            "min_tissue": float(min_tissue), "slide_mpp": float(slide_mpp), "mpp_source": mpp_source,
            "reference": reference, "analysis_version": ANALYSIS_VERSION, "pathview_version": __version__}


def unreadable_note(summary: dict[str, Any]) -> str:
    """Return a warning line when some tiles could not be read ("" when all could)."""
    n = summary.get("unreadable_tiles") or 0
    if not n:
        return ""
    return (f"{count(n, 'tile')} with damaged image data could not be read and {'was' if n == 1 else 'were'} "
            "left out: the numbers cover the rest")


def read_summary(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """Return a finished folder's summary, or None when the folder is unfinished or absent."""
    path = Path(out_dir) / SUMMARY_FILE
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_current(out_dir: str | os.PathLike, settings: dict[str, Any]) -> bool:
    """Return whether ``out_dir`` holds a finished analysis made with exactly ``settings``."""
    summary = read_summary(out_dir)
    return summary is not None and summary.get("settings") == settings


def analyze_slide(
    slide_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    encoder: str | LoadedEncoder = "pathview-he",
    device: str = "auto",
    slide_mpp: float | None = None,
    tile_mpp: float = 0.5,
    tile_size: int = 224,
    min_tissue: float = 0.1,
    reference: str | os.PathLike | ReferenceBank | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Analyse ``slide_path`` into ``out_dir`` (the scan output folder); return the summary dict.

    ``encoder``: a registry name or an already loaded encoder (a batch loads it once).
    ``reference``: a bank made by ``pathview reference build`` (path or loaded); without
    one, tiles are compared with the rest of their own slide. Raises
    :class:`~pathview.errors.PathviewError` subclasses for bad input and
    :class:`AnalysisCancelled` when ``cancel`` is set.
    """
    from ..slide import open_slide
    from .runner import resolve_device

    emit: ProgressFn = progress or (lambda _e: None)
    clock = _Clock()
    out = Path(out_dir)
    dev = resolve_device(device)
    bank = _load_reference(reference)
    with open_slide(slide_path, mpp=slide_mpp) as slide:
        level0_mpp = slide.require_mpp()
        emit(AnalyzeEvent("start", 0, 4, f"analysing {Path(slide_path).name}"))
        enc = _load(encoder, dev)
        if bank is not None:
            bank.check_encoder(enc.label)
        out.mkdir(parents=True, exist_ok=True)
        (out / SUMMARY_FILE).unlink(missing_ok=True)  # from here on the folder reads as unfinished
        thumb = slide.thumbnail(THUMBNAIL_SIZE)
        sel = analysis_grid(slide, thumb, tile_mpp, tile_size, min_tissue)
        grid = sel.grid
        clock.lap("tissue")
        emit(AnalyzeEvent("tissue", 1, 4, f"{len(grid)} tiles, tissue {sel.tissue_mm2:.2f} mm²"))
        staged = out / f".staged-{os.getpid()}-{threading.get_ident()}.h5"
        try:
            features, coords, tissue, measures, enc_rate, unreadable = _encode(slide, grid, enc, dev, staged, emit,
                                                                               cancel, slide_path)
            clock.lap("encode")
            if cancel is not None and cancel.is_set():
                raise AnalysisCancelled(slide_path, len(grid), len(grid))
            emit(AnalyzeEvent("score", 2, 4, "scoring artifacts and outliers"))
            artifacts = artifact_scores(measures, tissue)
            clean = np.max(np.stack(list(artifacts.values()), 1), 1) < THRESHOLD if len(tissue) else np.ones(0, bool)
            if bank is not None:
                anomaly, method = bank.score(features, device=dev), f"reference kNN ({bank.path.name})"
            else:
                from .outliers import outlier_scores

                # Tissue edges belong to the model of normal (every section has them); tiles that
                # are mostly glass say little about tissue and are weighted down.
                typical = clean & (tissue >= 0.25)
                weight = np.clip((tissue - 0.25) / 0.25, 0.0, 1.0)
                anomaly = outlier_scores(features, typical, coords, grid.patch_size_level0, weight, tissue=tissue)
                method = "robust PCA-Mahalanobis within slide, tile and 3x3 context"
            regions = find_regions(coords, grid.patch_size_level0, anomaly, artifacts) if len(coords) else []
            clock.lap("score")
            emit(AnalyzeEvent("write", 3, 4, f"{len(regions)} regions"))
            _finish_store(staged, out, anomaly, artifacts, measures, regions, method, sel.tissue_mm2)
        finally:
            staged.unlink(missing_ok=True)
        _write_pictures(out, slide, thumb, coords, grid.patch_size_level0, anomaly, artifacts, regions, level0_mpp)
        clock.lap("write")
        settings = analysis_settings(enc.label, tile_mpp, tile_size, min_tissue, level0_mpp,
                                     slide.info.mpp_source, bank.fingerprint if bank is not None else None)
        summary = _summary(slide, settings, sel, grid, features, anomaly, artifacts, regions, method, clock,
                           enc_rate, str(dev), level0_mpp, unreadable, Path(slide_path).name)
    atomic_write(out / SUMMARY_FILE, lambda p: p.write_text(json.dumps(summary, indent=2)))
    emit(AnalyzeEvent("done", 4, 4, f"wrote {out}"))
    return summary


class _Clock:
    def __init__(self) -> None:
        self.t0 = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[f"{name}_s"] = round(now - self.last, 3)
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.t0


def _load(encoder: str | LoadedEncoder, dev: Any) -> LoadedEncoder:
    if not isinstance(encoder, str):
        return encoder
    from ..encoders import load_encoder

    return load_encoder(encoder, device=dev)


def _load_reference(reference: str | os.PathLike | ReferenceBank | None) -> ReferenceBank | None:
    if reference is None:
        return None
    from .reference import ReferenceBank, load_bank

    return reference if isinstance(reference, ReferenceBank) else load_bank(reference)


def _encode(slide: Any, grid: Any, enc: LoadedEncoder, dev: Any, staged: Path, emit: ProgressFn,
            cancel: threading.Event | None, slide_path: str | os.PathLike
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
    """Encode into ``staged`` while measuring artifacts on the same pixels; return rows in file order
    and the level-0 places of the tiles that could not be read."""
    import h5py

    from .encode import EncodeCancelled, encode_slide

    measures = np.zeros((len(grid), len(MEASURES)), np.float32)
    order: list[np.ndarray] = []

    def on_tiles(indices: np.ndarray, pixels: np.ndarray) -> None:
        measures[indices] = tile_measures(pixels)
        order.append(indices.copy())

    def on_progress(e: Any) -> None:
        if e.kind in ("batch", "start"):
            emit(AnalyzeEvent("encode", e.done, e.total, e.message, e.tiles_per_s))

    try:
        result = encode_slide(slide, grid, enc, staged, device=dev, progress=on_progress, cancel=cancel,
                              on_tiles=on_tiles)
    except EncodeCancelled as exc:
        raise AnalysisCancelled(slide_path, exc.done, exc.total) from None
    rows = np.concatenate(order) if order else np.empty(0, np.int64)
    with h5py.File(staged, "r") as f:
        features, coords, tissue = f["features"][:], f["coords"][:], f["tissue"][:]
    if not np.array_equal(coords, grid.coords[rows]):
        raise AssertionError("tile rows and artifact measures fell out of step")
    return features, coords, tissue, measures[rows], result.tiles_per_s, grid.coords[result.unreadable]


def _finish_store(staged: Path, out: Path, anomaly: np.ndarray, artifacts: dict[str, np.ndarray],
                  measures: np.ndarray, regions: list, method: str, tissue_mm2: float) -> None:
    """Add the scores to the staged ``tiles.h5`` and move it into place."""
    import h5py

    with h5py.File(staged, "r+") as f:
        f.create_dataset("anomaly", data=anomaly.astype(np.float32))
        for name in ARTIFACT_CLASSES:
            f.create_dataset(f"qc_{name}", data=artifacts[name].astype(np.float32))
        f.create_dataset("region", data=region_index(len(anomaly), regions))
        qm = f.create_dataset("artifact_measures", data=measures.astype(np.float32))  # the raw QC numbers, for tuning
        qm.attrs["names"] = list(MEASURES)
        f.attrs["qc_classes"] = [f"qc_{c}" for c in ARTIFACT_CLASSES]
        f.attrs["anomaly_method"] = method
        f.attrs["score_threshold"] = THRESHOLD
        f.attrs["tissue_mm2"] = float(tissue_mm2)
        f.attrs["analysis_version"] = ANALYSIS_VERSION
    os.replace(staged, out / TILES_FILE)


def _write_pictures(out: Path, slide: Any, thumb: Any, coords: np.ndarray, ps0: int, anomaly: np.ndarray,
                    artifacts: dict[str, np.ndarray], regions: list, level0_mpp: float) -> None:
    from .export import regions_geojson
    from .heatmap import heatmap_picture

    gj = regions_geojson(regions, level0_mpp, slide.quickhash)
    atomic_write(out / FINDINGS_FILE, lambda p: p.write_text(json.dumps(gj)))
    combined = np.max(np.stack([anomaly, *artifacts.values()], 1), 1) if len(anomaly) else anomaly
    heat = heatmap_picture(thumb, coords, ps0, combined, slide.dimensions, regions)
    atomic_write(out / HEATMAP_FILE, lambda p: heat.save(p, format="PNG"))
    atomic_write(out / THUMBNAIL_FILE, lambda p: thumb.save(p, format="PNG"))


def _summary(slide: Any, settings: dict[str, Any], sel: Any, grid: Any, features: np.ndarray, anomaly: np.ndarray,
             artifacts: dict[str, np.ndarray], regions: list, method: str, clock: _Clock, enc_rate: float,
             device: str, level0_mpp: float, unreadable: np.ndarray, name: str) -> dict[str, Any]:
    n = len(anomaly)
    total_s = clock.total()
    return {
        "slide": str(slide.path),
        "slide_name": name,  # as the user named it (a DICOM folder, not one of its files)
        "slide_quickhash": slide.quickhash,
        "settings": settings,
        "tile_mpp_used": float(grid.mpp),
        "patch_size_level0": int(grid.patch_size_level0),
        "tissue_mm2": round(float(sel.tissue_mm2), 4),
        "tiles": n,
        # Tiles whose image data could not be decoded: left out of every score; where they are.
        "unreadable_tiles": len(unreadable),
        "unreadable_boxes": [[int(x), int(y), int(grid.patch_size_level0), int(grid.patch_size_level0)]
                             for x, y in unreadable[:1000].tolist()],
        "feature_dim": int(features.shape[1]) if features.ndim == 2 else 0,
        "anomaly_method": method,
        "top_anomaly": round(float(anomaly.max()), 4) if n else 0.0,
        "anomaly_fraction": round(float((anomaly >= THRESHOLD).mean()), 4) if n else 0.0,
        "artifact_fractions": {c: round(float((artifacts[c] >= THRESHOLD).mean()), 4) if n else 0.0
                               for c in ARTIFACT_CLASSES},
        "regions": len(regions),
        "top_regions": [{"rank": r.rank, "class": r.cls, "title": r.title, "score": round(r.score, 4),
                         "tiles": r.n_tiles, "area_mm2": round(r.area_mm2(level0_mpp), 5),
                         "centroid": [round(v, 1) for v in r.centroid()], "bbox": list(r.bbox())}
                        for r in regions[:20]],
        "timings": {**clock.laps, "total_s": round(total_s, 3)},
        "tiles_per_s": round(n / max(total_s, 1e-9), 2),
        "encode_tiles_per_s": round(enc_rate, 2),
        "device": device,
        "files": {"tiles": TILES_FILE, "findings": FINDINGS_FILE, "heatmap": HEATMAP_FILE,
                  "thumbnail": THUMBNAIL_FILE},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
