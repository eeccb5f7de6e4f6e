"""analyze_slide writes the scan output folder of ../shared/DESIGN.md: contract, atomicity, events, errors."""

from __future__ import annotations

import json
import threading

import h5py
import numpy as np
import pytest
from conftest import BROKEN, CMU_SVS, SLIDES, TCGA_NO_MPP
from PIL import Image
from shapely.geometry import shape

from pathview.analysis.analyze import AnalysisCancelled, analysis_settings, analyze_slide, is_current, read_summary
from pathview.analysis.artifacts import ARTIFACT_CLASSES
from pathview.analysis.heatmap import heatmap_picture, score_lattice
from pathview.analysis.regions import find_regions
from pathview.errors import MissingMppError, PathviewError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cmu_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmu-analysis")
    events = []
    summary = analyze_slide(CMU_SVS, out, device="cpu", progress=events.append)
    return out, summary, events


def test_tiles_h5_follows_the_contract(cmu_run):
    out, summary, _ = cmu_run
    with h5py.File(out / "tiles.h5", "r") as f:
        n = len(f["coords"])
        assert n == summary["tiles"] > 30
        assert f["coords"].dtype == np.int64 and f["coords"].shape == (n, 2)
        assert f["features"].shape == (n, 73) and f["tissue"].shape == (n,)
        assert f["anomaly"].dtype == np.float32 and f["anomaly"].shape == (n,)
        for name in ARTIFACT_CLASSES:
            scores = f[f"qc_{name}"][:]
            assert scores.dtype == np.float32 and scores.shape == (n,) and 0 <= scores.min() <= scores.max() <= 1
        assert list(f.attrs["qc_classes"]) == [f"qc_{c}" for c in ARTIFACT_CLASSES]
        for key in ("patch_size", "patch_size_level0", "mpp", "level0_mpp", "encoder", "slide_quickhash",
                    "pathview_version", "anomaly_method"):
            assert key in f.attrs, key
        assert f.attrs["encoder"] == "pathview-he" and f.attrs["patch_size"] == 224
        ranks = f["region"][:]
        assert ranks.max() == summary["regions"]
    assert {p.name for p in out.iterdir()} == {"tiles.h5", "findings.geojson", "heatmap.png", "thumbnail.png",
                                               "summary.json"}


def test_summary_is_written_last_and_holds_the_settings(cmu_run):
    out, summary, events = cmu_run
    assert read_summary(out) == summary
    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert written["summary.json"] == max(written.values())
    settings = summary["settings"]
    assert settings == analysis_settings("pathview-he", 0.5, 224, 0.1, 0.499, "slide", None)
    assert is_current(out, settings) and not is_current(out, {**settings, "encoder": "uni"})
    assert summary["tissue_mm2"] > 0.3 and set(summary["artifact_fractions"]) == set(ARTIFACT_CLASSES)
    assert all(v == 0 for v in summary["artifact_fractions"].values())  # clean real tissue
    assert {"tissue_s", "encode_s", "score_s", "write_s", "total_s"} <= set(summary["timings"])
    stages = [e.stage for e in events]
    assert stages[0] == "start" and stages[-1] == "done" and "encode" in stages
    assert stages.index("tissue") < stages.index("encode") < stages.index("score") < stages.index("write")
    encode = [e for e in events if e.stage == "encode"]
    assert encode[-1].done == encode[-1].total == summary["tiles"]


def test_findings_are_valid_qupath_annotations(cmu_run):
    out, summary, _ = cmu_run
    gj = json.loads((out / "findings.geojson").read_text())
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == summary["regions"]
    for rank, feat in enumerate(gj["features"], 1):
        props = feat["properties"]
        assert props["objectType"] == "annotation"
        assert set(props["classification"]) == {"name", "color"} and len(props["classification"]["color"]) == 3
        assert all(isinstance(v, (int, float)) for v in props["measurements"].values())
        assert props["measurements"]["rank"] == rank and props["measurements"]["tiles"] >= 1
        geom = shape(feat["geometry"])
        assert geom.is_valid and geom.area > 0
        rings = [feat["geometry"]["coordinates"]] if feat["geometry"]["type"] == "Polygon" \
            else feat["geometry"]["coordinates"]
        assert all(ring[0] == ring[-1] for poly in rings for ring in poly)


def test_regions_merge_neighbours_rank_and_stay_valid():
    coords = np.array([(x, y) for y in range(10) for x in range(10)], np.int64) * 100
    anomaly = np.zeros(100, np.float32)
    block = [(2, 2), (3, 2), (2, 3), (3, 3), (4, 4)]  # a 2x2 block and a diagonal neighbour: one region
    for x, y in block:
        anomaly[y * 10 + x] = 0.9
    anomaly[9 * 10 + 9] = 0.95  # a lone tile: ranked after the region despite its higher score
    pen = np.zeros(100, np.float32)
    pen[[0, 1]] = 1.0
    regions = find_regions(coords, 100, anomaly, {"pen": pen})
    assert [(r.cls, r.n_tiles) for r in regions] == [("outlier", 5), ("pen", 2), ("outlier", 1)]
    assert [r.rank for r in regions] == [1, 2, 3]
    assert all(r.geometry.is_valid for r in regions)
    assert regions[0].geometry.area == pytest.approx(5 * 100 * 100)
    assert regions[1].bbox() == (0, 0, 200, 100)
    # Under the threshold, four touching outlier tiles still make a region; three do not.
    weak = np.zeros(100, np.float32)
    weak[[55, 56, 65, 66]] = 0.4
    weak[[10, 11, 12]] = 0.4
    groups = find_regions(coords, 100, weak, {"pen": np.zeros(100, np.float32)})
    assert [(r.cls, r.n_tiles) for r in groups] == [("outlier", 4)]


def test_heatmap_colours_only_scored_tiles():
    thumb = Image.new("RGB", (100, 50), (240, 240, 240))
    coords = np.array([[0, 0], [200, 0]], np.int64)
    pic = np.asarray(heatmap_picture(thumb, coords, 200, np.array([0.0, 1.0], np.float32), (1000, 500)))
    assert pic.shape == (50, 100, 3)
    assert (pic[30:, :] == 240).all()  # no tile there
    low, high = pic[5, 10].astype(int), pic[5, 30].astype(int)
    assert (low != 240).any() and high[0] > high[2] and low[2] > low[0]  # blue for low, red for high
    lattice = score_lattice(coords, 200, np.array([0.2, 0.8]), (1000, 500))
    assert lattice.shape == (3, 5) and lattice[0, 1] == pytest.approx(0.8) and np.isnan(lattice[1, 1])


def test_cancel_leaves_no_summary_and_no_temporary_files(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text("{}")  # an older finished run
    cancel = threading.Event()

    def stop_on_first_batch(event):
        if event.stage == "encode" and event.done > 0:
            cancel.set()

    with pytest.raises(AnalysisCancelled, match="cancelled"):
        analyze_slide(CMU_SVS, out, device="cpu", progress=stop_on_first_batch, cancel=cancel)
    assert not (out / "summary.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(MissingMppError, match="--slide-mpp"):
        analyze_slide(TCGA_NO_MPP, tmp_path / "a", device="cpu")
    with pytest.raises(PathviewError, match="truncated"):
        analyze_slide(BROKEN / "CMU-1-Small-Region-truncated.svs", tmp_path / "b", device="cpu")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_slide_without_tissue_is_a_finished_empty_analysis(tmp_path):
    summary = analyze_slide(SLIDES / "he-patch-3level.tif", tmp_path, device="cpu", slide_mpp=0.5)
    assert summary["tiles"] == 0 and summary["regions"] == 0 and read_summary(tmp_path) == summary
    assert json.loads((tmp_path / "findings.geojson").read_text())["features"] == []
    with h5py.File(tmp_path / "tiles.h5", "r") as f:
        assert f["anomaly"].shape == (0,) and f["coords"].shape == (0, 2)
