"""What the model is shown: region pictures at a suitable magnification, scale, scores and annotation."""

from __future__ import annotations

import io
import json

import h5py
import numpy as np
import pytest
from conftest import CMU_SVS, TCGA_NO_MPP
from PIL import Image

from pathview.assistant import Annotation, build_context
from pathview.assistant.context import CELL_MPP, detail_mpp, plan_boxes
from pathview.assistant.errors import RegionOutsideSlideError
from pathview.assistant.scores import find_tiles_h5, region_scores
from pathview.slide import open_slide
from pathview.workspace import Workspace


@pytest.fixture(scope="module")
def cmu():
    with open_slide(CMU_SVS) as s:
        yield s


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_questions_about_cells_get_a_20x_detail_of_a_large_region(cmu):
    assert detail_mpp("Are there mitoses?") == CELL_MPP and detail_mpp("Describe the architecture") is None
    box = (100, 200, 2000, 1600)
    ctx = build_context(cmu, box, "How atypical are the nuclei?", budget=448)
    whole, detail = ctx.images
    assert whole.box == box and max(whole.size) == 448 and whole.mpp == pytest.approx(0.499 * 2000 / 448)
    assert detail.mpp == pytest.approx(CELL_MPP, rel=0.01) and detail.size == (448, 448)
    dx, dy, dw, dh = detail.box
    assert (dx + dw / 2, dy + dh / 2) == pytest.approx((100 + 1000, 200 + 800), abs=1)
    assert np.abs(pixels(detail.png).astype(int) - cmu.read_scaled(detail.box, detail.size)).max() == 0
    arch = build_context(cmu, box, "Describe the overall architecture", budget=448)
    assert len(arch.images) == 1, "architecture is judged on the whole region at low power"


def test_a_small_region_is_sent_at_its_own_resolution_never_upsampled(cmu):
    ctx = build_context(cmu, (1000, 1000, 300, 200), "Are there mitoses?", budget=896)
    (img,) = ctx.images
    assert img.size == (300, 200) and img.downsample == 1.0
    assert plan_boxes((0, 0, 300, 200), "mitoses?", 896, 0.25) == [("Image 1, the whole region", (0, 0, 300, 200))]


def test_text_states_the_scale_and_physical_size(cmu):
    ctx = build_context(cmu, (0, 0, 1000, 500), "What is this?", budget=500)
    assert "20x, 0.499 µm/px" in ctx.text and "499 x 250 µm" in ctx.text
    assert "whole region: 500 x 250 px at 1 µm/px (about 10x)" in ctx.text
    assert ctx.facts["size_um"] == [499.0, 249.5]


def test_slide_without_pixel_size_says_so_and_still_works():
    with open_slide(TCGA_NO_MPP) as s:
        ctx = build_context(s, (0, 0, 4443, 3567), "Are there mitoses?", budget=512)
    assert "records no pixel size" in ctx.text and "µm" not in ctx.text
    assert ctx.facts["size_um"] is None and max(ctx.images[0].size) == 512
    assert len(ctx.images) == 2 and ctx.images[1].downsample == 1.0, "detail at full resolution"


def test_region_is_clipped_to_the_slide_and_outside_is_an_error(cmu):
    ctx = build_context(cmu, (2000, 2800, 1000, 1000), "What is this?", budget=256)
    assert ctx.box == (2000, 2800, 220, 167)
    with pytest.raises(RegionOutsideSlideError, match="lies outside the slide \\(2220 x 2967 px\\)"):
        build_context(cmu, (5000, 0, 100, 100), "What is this?", budget=256)


def write_tiles_h5(path, quickhash: str) -> None:
    """A tiles.h5 as a scan writes it: a 448-px grid over the slide, an anomaly score and a grouped artifact score."""
    ys, xs = np.mgrid[0:2967:448, 0:2220:448]
    coords = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.int64)
    anomaly = np.linspace(0, 1, len(coords), dtype=np.float32)
    with h5py.File(path, "w") as f:
        f["coords"] = coords
        f["features"] = np.zeros((len(coords), 4), np.float32)
        f["tissue"] = np.ones(len(coords), np.float32)
        f["anomaly"] = anomaly
        f["artifacts/blur"] = np.full(len(coords), 0.25, np.float32)
        f.attrs["patch_size_level0"] = 448
        f.attrs["slide_quickhash"] = quickhash


def test_analysis_scores_of_the_region_are_read_by_name(cmu, tmp_path):
    h5 = tmp_path / "tiles.h5"
    write_tiles_h5(h5, cmu.quickhash)
    scores = region_scores(h5, (0, 0, 448, 448))  # exactly the first tile
    assert scores.tiles == 1 and {s.name for s in scores.scores} == {"anomaly", "artifacts blur"}
    far = region_scores(h5, (1800, 2600, 400, 300))
    anomaly = next(s for s in far.scores if s.name == "anomaly")
    assert anomaly.max == pytest.approx(1.0) and anomaly.slide_rank > 0.9
    ctx = build_context(cmu, (1800, 2600, 400, 300), "Is this an artefact?", budget=256, tiles_h5=h5,
                        annotation=Annotation(7, "Tumor", "check the margin"))
    assert "anomaly mean" in ctx.text and "artifacts blur mean 0.25" in ctx.text
    assert "class 'Tumor', note: check the margin" in ctx.text and ctx.facts["annotation"]["id"] == 7
    assert region_scores(h5, (0, 0, 100, 100), quickhash="another-slide") is None
    assert region_scores(tmp_path / "missing.h5", (0, 0, 100, 100)) is None
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    assert region_scores(tmp_path / "bad.h5", (0, 0, 100, 100)) is None


def test_the_slides_scores_are_found_in_the_workspace_once_the_analysis_is_finished(cmu, tmp_path):
    out = Workspace(tmp_path / "ws").analysis_dir(cmu.quickhash)
    out.mkdir(parents=True)
    write_tiles_h5(out / "tiles.h5", cmu.quickhash)
    assert find_tiles_h5(tmp_path / "ws", cmu.quickhash) is None, "unfinished: no summary.json yet"
    (out / "summary.json").write_text(json.dumps({"slide": {"quickhash": cmu.quickhash}}))
    assert find_tiles_h5(tmp_path / "ws", cmu.quickhash) == out / "tiles.h5"
    assert find_tiles_h5(tmp_path / "ws", "another-slide") is None
