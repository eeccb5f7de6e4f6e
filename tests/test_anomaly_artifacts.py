"""Artifact QC on real tissue: clean slides score low; each injected artifact is found where it was put."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CMU_DICOM, CMU_SVS, SLIDES, TCGA_NO_MPP

from pathview.analysis.artifacts import ARTIFACT_CLASSES, MEASURES, artifact_scores, tile_measures
from pathview.analysis.inject import EXPECTED_CLASS, PAINTERS, tile_coverage
from pathview.slide import open_slide, tile_grid
from pathview.slide.tile_reader import iter_tiles

TILE = 224


def slide_scores(path, mpp=None, tile_mpp=0.5):
    with open_slide(path, mpp=mpp) as s:
        grid = tile_grid(s, mpp=max(tile_mpp, s.mpp), size=TILE)
        measures = np.zeros((len(grid), len(MEASURES)), np.float32)
        for batch in iter_tiles(s, grid, workers=2):
            measures[batch.indices] = tile_measures(batch.pixels)
    return artifact_scores(measures, grid.tissue), len(grid)


@pytest.mark.parametrize("path, mpp", [(CMU_SVS, None), (CMU_DICOM, None), (TCGA_NO_MPP, 0.25), (TCGA_NO_MPP, 0.5),
                                       (SLIDES / "camelyon-lowres.dcm", None)],
                         ids=["cmu-svs", "cmu-dicom", "tcga-40x", "tcga-20x", "camelyon"])
def test_clean_real_tissue_has_no_artifact_tile(path, mpp):
    scores, n = slide_scores(path, mpp)
    assert n >= 10
    for name in ARTIFACT_CLASSES:
        assert scores[name].max() < 0.5, (name, float(scores[name].max()))


@pytest.fixture(scope="module")
def cmu_cells():
    """CMU-1-Small-Region at level 0 (0.499 µm/px), cut into 224-px cells, with clean measures per cell."""
    with open_slide(CMU_SVS) as s:
        img = s.read_region((0, 0), 0, s.dimensions)
    rows, cols = img.shape[0] // TILE, img.shape[1] // TILE
    cells = np.array([(c * TILE, r * TILE) for r in range(rows) for c in range(cols)], np.int64)
    od = -np.log(np.clip(img.astype(np.float32), 1, 255) / 255.0).sum(-1)
    stained = tile_coverage(od > 0.25, cells, TILE)
    keep = stained >= 0.1
    cells, stained = cells[keep], stained[keep]
    measures = tile_measures(cut(img, cells))
    return img, cells, stained, measures


def cut(img: np.ndarray, cells: np.ndarray) -> np.ndarray:
    return np.stack([img[y:y + TILE, x:x + TILE] for x, y in cells])


def find_box(cells, stained, cw, ch, edge):
    """Return the first box of cw x ch cells on solid tissue (or, for ``edge``, a row crossing the tissue edge)."""
    where = {tuple(c): s for c, s in zip(cells // TILE, stained)}
    for (cx, cy), _ in sorted(where.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        block = [where.get((cx + i, cy + j), 0.0) for j in range(ch) for i in range(cw)]
        if edge and min(block) < 0.3 and max(block) >= 0.6 or not edge and min(block) >= 0.7:
            return cx * TILE, cy * TILE, cw * TILE, ch * TILE
    raise AssertionError("no room for the injection")


SIZES = {"pen": (3, 1), "blur": (2, 2), "fold": (2, 2), "bubble": (2, 2), "debris": (1, 1),
         "overexposure": (2, 2), "underexposure": (2, 2)}


@pytest.mark.parametrize("kind", list(SIZES))
def test_each_injected_artifact_is_found_where_it_was_put(cmu_cells, kind):
    img, cells, stained, clean = cmu_cells
    rng = np.random.default_rng(1)
    box = find_box(cells, stained, *SIZES[kind], edge=kind == "pen")
    painted = img.copy()
    mask = PAINTERS[kind](painted, box, rng)
    cover = tile_coverage(mask, cells, TILE)
    touched = cover > 0
    measures = clean.copy()
    measures[touched] = tile_measures(cut(painted, cells[touched]))
    scores = artifact_scores(measures, stained)
    expected = scores[EXPECTED_CLASS[kind]]
    hit = cover >= (0.05 if kind == "debris" else 0.25)
    assert hit.sum() >= 1
    assert np.mean(expected[hit] >= 0.5) >= 0.5, (kind, expected[hit])
    # ... and nowhere else: clean tiles keep that class low.
    assert expected[~touched].max() < 0.5
    # Where it was found, it is the tile's strongest artifact class.
    best = np.stack([scores[c] for c in ARTIFACT_CLASSES], 1).argmax(1)
    found = hit & (expected >= 0.5)
    assert np.all(np.asarray(ARTIFACT_CLASSES)[best[found]] == EXPECTED_CLASS[kind])


def test_black_ink_is_pen_and_a_black_particle_is_debris(cmu_cells):
    img, cells, stained, clean = cmu_cells
    rng = np.random.default_rng(2)
    painted = img.copy()
    pen_box = find_box(cells, stained, 3, 1, edge=True)
    PAINTERS["pen"](painted, pen_box, rng, ink="black")
    tiles = cut(painted, np.array([[pen_box[0] + TILE, pen_box[1]]]))
    m = tile_measures(tiles)
    scores = artifact_scores(np.concatenate([clean, m]), np.concatenate([stained, [1.0]]))
    assert scores["pen"][-1] >= 0.5 and scores["debris"][-1] < 0.5


@pytest.mark.parametrize("ink", ["green", "blue", "black"])
def test_ink_over_dense_tissue_is_pen(cmu_cells, ink):
    """A stroke wholly over tissue, where the stain beneath hides its hue, still reads as pen (not debris).

    Blue ink absorbs nearly along haematoxylin; it is told from nuclei by leaving no paler gap across the band.
    """
    img, cells, stained, clean = cmu_cells
    painted = img.copy()
    box = find_box(cells, stained, 3, 1, edge=False)
    cover = tile_coverage(PAINTERS["pen"](painted, box, np.random.default_rng(3), ink=ink), cells, TILE)
    touched = cover > 0
    measures = clean.copy()
    measures[touched] = tile_measures(cut(painted, cells[touched]))
    scores = artifact_scores(measures, stained)
    hit = cover >= 0.25
    assert hit.sum() >= 2 and stained[hit].min() >= 0.7
    assert np.all(scores["pen"][hit] >= 0.5), scores["pen"][hit]
    assert np.all(scores["debris"][hit] < 0.5), scores["debris"][hit]
    assert scores["pen"][~touched].max() < 0.5
