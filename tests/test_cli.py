"""The `pathview` command line, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import BROKEN, CMU_SVS, SLIDES, TCGA_NO_MPP
from PIL import Image

from pathview.slide.demo import DEMO_NAME


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pathview", *args], capture_output=True, text=True, timeout=timeout)


def test_info_json_lists_metadata():
    res = run("info", str(CMU_SVS), str(SLIDES / "camelyon-lowres.dcm"), "--json")
    assert res.returncode == 0, res.stderr
    records = json.loads(res.stdout)
    assert [r["vendor"] for r in records] == ["aperio", "dicom"]
    assert records[0]["mpp"] == 0.499 and records[0]["objective_power"] == 20
    assert "label" in records[0]["associated_images"]


def test_bad_input_exits_2_with_one_line_naming_file_and_cause():
    for name in ["CMU-1-Small-Region-truncated.svs", "vectra-unsupported.qptiff", "dicom-no-imagetype.dcm"]:
        res = run("info", str(BROKEN / name))
        assert res.returncode == 2
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and "Traceback" not in res.stderr


def test_bad_option_value_is_a_usage_error_with_status_2(tmp_path):
    res = run("render", str(CMU_SVS), "--size", "abc", "-o", str(tmp_path / "x.png"))
    assert res.returncode == 2 and "Invalid value for --size" in res.stderr and "unexpected" not in res.stderr


def test_render_at_a_magnification_needs_a_pixel_size_or_objective(tmp_path):
    res = run("render", str(TCGA_NO_MPP), "--center", "1000,1000", "--magnification", "5", "--size", "200x100",
              "-o", str(tmp_path / "r.png"))
    assert res.returncode == 2 and "--slide-mpp" in res.stderr
    res = run("render", str(TCGA_NO_MPP), "--center", "1000,1000", "--magnification", "5", "--size", "200x100",
              "-o", str(tmp_path / "r.png"), "--slide-mpp", "0.5")
    assert res.returncode == 0, res.stderr


def test_an_unwritable_output_is_one_line_and_status_2(tmp_path):
    for out, cause in [(tmp_path / "missing" / "x.png", "No such file"), (tmp_path / "x.xyz", "unknown image type")]:
        res = run("thumbnail", str(CMU_SVS), "-o", str(out))
        assert res.returncode == 2 and cause in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_tiles_warn_when_they_upsample_a_coarse_slide():
    res = run("tiles", str(SLIDES / "camelyon-lowres.dcm"), "--mpp", "8")
    assert res.returncode == 0 and "upsampled" in res.stderr
    assert "upsampled" not in run("tiles", str(CMU_SVS)).stderr


def test_version():
    res = run("--version")
    assert res.returncode == 0 and res.stdout.startswith("pathview ")


def test_debug_shows_the_traceback():
    res = run("info", str(BROKEN / "CMU-1-Small-Region-truncated.svs"), "--debug")
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_thumbnail_writes_an_image(tmp_path):
    out = tmp_path / "thumb.png"
    res = run("thumbnail", str(CMU_SVS), "-o", str(out), "--size", "300")
    assert res.returncode == 0, res.stderr
    assert max(Image.open(out).size) == 300


def test_tiles_reports_count_area_and_draws_the_grid(tmp_path):
    out = tmp_path / "mask.png"
    res = run("tiles", str(CMU_SVS), "--mpp", "0.5", "--size", "224", "-o", str(out), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert 50 < summary["tiles"] < 140
    assert 0.4 < summary["tissue_mm2"] < 1.2  # ~38% of 1.1 x 1.5 mm
    assert out.exists()


def test_tiles_on_a_slide_without_mpp_asks_for_one_and_accepts_it():
    res = run("tiles", str(TCGA_NO_MPP))
    assert res.returncode == 2 and "--slide-mpp" in res.stderr
    res = run("tiles", str(TCGA_NO_MPP), "--slide-mpp", "0.25", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["mpp_source"] == "user"


def test_demo_writes_a_slide_and_its_results_without_a_display(tmp_path):
    res = run("demo", "-o", str(tmp_path), "--no-viewer", timeout=300)
    assert res.returncode == 0, res.stderr
    for name in [DEMO_NAME, "demo-results/info.json", "demo-results/thumbnail.png",
                 "demo-results/tiles.png", "demo-results/view-10x.png"]:
        assert (tmp_path / name).exists(), name
    info = run("info", str(tmp_path / DEMO_NAME), "--json")
    rec = json.loads(info.stdout)[0]
    assert rec["mpp"] == 0.5 and rec["level_count"] >= 3 and "label" in rec["associated_images"]
