"""Morphological outliers and the reference bank, on real tile embeddings (pathview-he) and on wide random ones."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from conftest import CMU_DICOM, CMU_SVS, TCGA_NO_MPP

from pathview.analysis.outliers import outlier_scores
from pathview.analysis.reference import ReferenceError, build_bank, knn_mean_distance, load_bank
from pathview.slide import open_slide, tile_grid
from pathview.slide.tile_reader import iter_tiles

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def embed_grid(path, mpp=None, min_tissue=0.5):
    """Return the features of a real slide's tissue tiles and their grid (coords, tissue shares)."""
    from pathview.analysis.runner import embed_tiles
    from pathview.encoders import load_encoder

    enc = load_encoder("pathview-he")
    with open_slide(path, mpp=mpp) as s:
        grid = tile_grid(s, mpp=0.5, size=224, min_tissue=min_tissue)
        feats = np.zeros((len(grid), enc.embed_dim), np.float32)
        for batch in iter_tiles(s, grid, workers=2):
            feats[batch.indices] = embed_tiles(enc, batch.pixels)
    return feats, grid


def embed(path, mpp=None):
    """Return (features, coords, patch_size_level0) of a real slide's mostly-tissue tiles."""
    feats, grid = embed_grid(path, mpp)
    return feats, grid.coords, grid.patch_size_level0


@pytest.fixture(scope="module")
def tcga():
    """The TCGA frozen section read as if scanned at 0.7 µm/px: about 400 tiles, so 50 are an eighth."""
    return embed(TCGA_NO_MPP, mpp=0.7)


@pytest.fixture(scope="module")
def cmu():
    return embed(CMU_SVS)


def lattice_blob(coords: np.ndarray, size: int, n: int) -> np.ndarray:
    """Return the indices of ``n`` tiles that grow outward from the most central tile (a contiguous region)."""
    cells = coords // size
    centre = np.argmin(((cells - np.median(cells, 0)) ** 2).sum(1))
    order = np.argsort(np.abs(cells - cells[centre]).max(1) * 1000 + np.abs(cells - cells[centre]).sum(1))
    return order[:n]


def test_a_region_of_50_foreign_tiles_stays_high_where_nearest_neighbour_distance_hides_it(tcga, cmu):
    feats, coords, size = tcga
    foreign, _, _ = cmu
    assert len(feats) >= 350
    blob = lattice_blob(coords, size, 50)
    mixed = feats.copy()
    # One abnormal tissue: ten tiles of the other slide, each seen five times with a little noise.
    rng = np.random.default_rng(0)
    mixed[blob] = foreign[np.arange(50) % 10] + 0.02 * foreign.std(0) * rng.standard_normal((50, feats.shape[1]))
    inside = np.zeros(len(feats), bool)
    inside[blob] = True

    scores = outlier_scores(mixed, coords=coords, patch_size_level0=size)
    assert np.mean(scores[inside] >= 0.5) >= 0.75
    assert np.mean(scores[~inside] >= 0.5) <= 0.05

    # The naive score, distance to the nearest other tile, lets the region's tiles vouch for each other.
    z = (mixed - np.median(mixed, 0)) / (mixed.std(0) + 1e-6)
    d = knn_mean_distance(z, z, k=2) * 2  # the nearest is the tile itself
    assert np.median(d[inside]) < np.percentile(d[~inside], 75)


def test_clean_real_slides_have_few_outliers(tcga, cmu):
    for feats, coords, size in (tcga, cmu):
        scores = outlier_scores(feats, coords=coords, patch_size_level0=size)
        assert np.median(scores) < 0.1 and np.mean(scores >= 0.5) <= 0.1


def test_tissue_edges_are_judged_against_the_slides_other_edges():
    """The frozen section read as 20x: its edge tiles (partly glass) are few beside its solid ones.

    Without their tissue share the model of normal trims them away and calls edges abnormal;
    with it, an edge tile is an outlier only when unlike the slide's other edges, and solid
    tiles are judged exactly as before.
    """
    feats, grid = embed_grid(TCGA_NO_MPP, mpp=0.5, min_tissue=0.1)
    tissue, coords, size = grid.tissue, grid.coords, grid.patch_size_level0
    edge = tissue < 0.9
    assert 20 <= edge.sum() <= 0.3 * len(tissue)
    fit, weight = tissue >= 0.25, np.clip((tissue - 0.25) / 0.25, 0.0, 1.0)  # as analyze_slide calls it
    plain = outlier_scores(feats, fit, coords, size, weight)
    aware = outlier_scores(feats, fit, coords, size, weight, tissue=tissue)
    flagged_plain, flagged_aware = (plain[edge] >= 0.5).sum(), (aware[edge] >= 0.5).sum()
    assert flagged_plain >= 10 and flagged_aware <= flagged_plain // 2, (flagged_plain, flagged_aware)
    assert np.all(aware <= plain)
    np.testing.assert_array_equal(aware[~edge], plain[~edge])


def test_any_encoder_width_and_a_clean_slide_scores_low():
    rng = np.random.default_rng(0)
    side, dim = 22, 768
    coords = np.array([(x, y) for y in range(side) for x in range(side)], np.int64) * 256
    base = rng.standard_normal((8, dim))
    feats = rng.standard_normal((side * side, 8)) @ base + 0.3 * rng.standard_normal((side * side, dim))
    clean = outlier_scores(feats, coords=coords, patch_size_level0=256)
    assert np.mean(clean >= 0.5) < 0.03
    blob = lattice_blob(coords, 256, 50)
    feats[blob] += 2.0 * rng.standard_normal(dim) / np.sqrt(dim) * np.sqrt(dim) * 0.3
    scores = outlier_scores(feats, coords=coords, patch_size_level0=256)
    inside = np.zeros(len(feats), bool)
    inside[blob] = True
    assert np.mean(scores[inside] >= 0.5) >= 0.9 and np.mean(scores[~inside] >= 0.5) < 0.05


def test_tile_weight_and_tiny_inputs():
    assert outlier_scores(np.zeros((2, 5), np.float32)).tolist() == [0.0, 0.0]
    rng = np.random.default_rng(1)
    feats = rng.standard_normal((100, 6))
    feats[0] += 40
    assert outlier_scores(feats)[0] > 0.99
    weight = np.ones(100)
    weight[0] = 0.0
    assert outlier_scores(feats, weight=weight)[0] == 0.0


def test_knn_search_is_exact_in_chunks_and_can_leave_groups_out():
    rng = np.random.default_rng(2)
    q, b = rng.standard_normal((37, 9)).astype(np.float32), rng.standard_normal((53, 9)).astype(np.float32)
    full = np.sqrt(((q[:, None] - b[None]) ** 2).sum(-1))
    expect = np.sort(full, 1)[:, :4].mean(1)
    got = knn_mean_distance(q, b, k=4, query_chunk=7, bank_chunk=5)
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-4)
    qg, bg = rng.integers(0, 3, 37), rng.integers(0, 3, 53)
    masked = np.where(qg[:, None] == bg[None], np.inf, full)
    np.testing.assert_allclose(knn_mean_distance(q, b, k=4, exclude=(qg, bg), bank_chunk=6),
                               np.sort(masked, 1)[:, :4].mean(1), rtol=1e-4, atol=1e-4)


def test_reference_bank_of_normal_tissue_flags_other_tissue(tcga, cmu, tmp_path):
    cmu_dicom, _, _ = embed(CMU_DICOM)
    bank = build_bank([cmu[0], cmu_dicom], "pathview-he", tmp_path / "bank.h5")
    assert bank.encoder == "pathview-he" and len(bank.features) == len(cmu[0]) + len(cmu_dicom)
    same = bank.score(cmu[0])
    other = bank.score(tcga[0])
    assert np.mean(other >= 0.5) > 0.8 and np.mean(same >= 0.5) < 0.1
    reloaded = load_bank(tmp_path / "bank.h5")
    assert reloaded.fingerprint == bank.fingerprint and reloaded.fingerprint.startswith("bank.h5:")
    with pytest.raises(ReferenceError, match="built with encoder 'pathview-he', not 'uni'"):
        bank.check_encoder("uni")


def test_bad_banks_are_clear_errors(tmp_path):
    with pytest.raises(ReferenceError, match="not found"):
        load_bank(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ReferenceError, match="not a pathview reference bank"):
        load_bank(tmp_path / "other.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(ReferenceError, match="'junk.h5' is not a pathview reference bank"):
        load_bank(tmp_path / "junk.h5")
    with pytest.raises(ReferenceError, match="at least 2"):
        build_bank([np.zeros((1, 4), np.float32)], "pathview-he", tmp_path / "b.h5")
