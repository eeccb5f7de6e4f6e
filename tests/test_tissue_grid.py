"""Tissue detection, tile grids and the fast tile reader, on real and demo slides."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BROKEN, CMU_SVS, SLIDES

from pathview.slide import TileCache, TissueMask, detect_tissue, open_slide, tile_grid
from pathview.slide.tile_reader import iter_tiles, read_tile_naive
from pathview.slide.tissue import tissue_from_rgb


def test_tissue_on_a_real_slide_covers_the_stained_area_not_the_glass():
    with open_slide(CMU_SVS) as slide:
        mask = detect_tissue(slide)
        thumb = slide.overview(mask.mask.shape[::-1])
    frac = mask.fraction()
    assert 0.2 < frac < 0.7
    brightness = thumb.mean(axis=-1)
    assert brightness[mask.mask].mean() < brightness[~mask.mask].mean() - 25


def test_background_noise_and_dust_are_not_tissue():
    rng = np.random.default_rng(3)
    glass = np.clip(rng.normal(238, 6, (400, 600, 3)), 0, 255).astype(np.uint8)
    glass[100:103, 200:203] = (90, 80, 90)  # a dust speck
    assert tissue_from_rgb(glass, pixel_um=8.0).sum() == 0


def test_pen_ink_is_not_tissue(demo_slide):
    with open_slide(demo_slide) as slide:
        mask = detect_tissue(slide)
        w, h = slide.dimensions
        overview = slide.overview(mask.mask.shape[::-1]).astype(np.int16)
    # The demo's green stroke starts left of the tissue, near 12% width and 86% height.
    rows, cols = mask.mask.shape
    window = (slice(int(0.82 * rows), int(0.9 * rows)), slice(int(0.1 * cols), int(0.16 * cols)))
    region = overview[window]
    green = region[..., 1] > region[..., 0] + 25
    assert green.sum() >= 5, "the window should hold green ink"
    assert not mask.mask[window][green].any()
    assert mask.mask[int(0.5 * mask.mask.shape[0]), int(0.3 * mask.mask.shape[1])]


def test_grid_geometry_and_tissue_fractions_match_a_brute_force_count():
    with open_slide(CMU_SVS) as slide:
        mask = detect_tissue(slide)
        grid = tile_grid(slide, mpp=0.5, size=224, mask=mask, min_tissue=0.0)
    assert grid.patch_size_level0 == round(224 * 0.5 / 0.499)
    assert grid.coords.dtype == np.int64 and grid.coords.shape[1] == 2
    assert np.all(grid.coords % grid.patch_size_level0 == 0)
    m = mask.mask
    for i in range(0, len(grid), 7):
        x, y = grid.coords[i]
        ps = grid.patch_size_level0
        r0, r1 = int(np.floor(y / mask.scale_y)), int(np.ceil((y + ps) / mask.scale_y))
        c0, c1 = int(np.floor(x / mask.scale_x)), int(np.ceil((x + ps) / mask.scale_x))
        window = m[r0:min(r1, m.shape[0]), c0:min(c1, m.shape[1])]
        expected = window.sum() / max((min(r1, m.shape[0]) - r0) * (min(c1, m.shape[1]) - c0), 1)
        assert grid.tissue[i] == pytest.approx(expected, abs=1e-6)


def test_min_tissue_keeps_only_tissue_tiles():
    with open_slide(CMU_SVS) as slide:
        everything = tile_grid(slide, min_tissue=0.0)
        tissue = tile_grid(slide, min_tissue=0.5)
    assert 0 < len(tissue) < len(everything)
    assert tissue.tissue.min() >= 0.5


@pytest.mark.parametrize("workers", [1, 3])
def test_block_reader_gives_the_tiles_of_the_naive_loop(workers):
    with open_slide(CMU_SVS) as slide:
        grid = tile_grid(slide, mpp=0.5, size=224, min_tissue=0.3)
        seen = np.zeros(len(grid), bool)
        for batch in iter_tiles(slide, grid, workers=workers, block_tiles=4):
            assert batch.pixels.shape[1:] == (224, 224, 3)
            for i, tile in zip(batch.indices, batch.pixels):
                assert not seen[i]
                seen[i] = True
                if i % 5 == 0:
                    naive = read_tile_naive(slide, grid, int(i)).astype(np.int16)
                    assert np.abs(tile.astype(np.int16) - naive).mean() < 3.0
    assert seen.all()


def test_block_reader_uses_a_coarser_level_exactly(demo_slide):
    with open_slide(demo_slide) as slide:  # level 1 is exactly 2 µm/px
        grid = tile_grid(slide, mpp=2.0, size=64, min_tissue=0.5)
        batch = next(iter_tiles(slide, grid, workers=1))
        i = int(batch.indices[0])
        x, y = grid.coords[i]
        direct = slide.read_region((int(x), int(y)), 1, (64, 64))
    assert np.array_equal(batch.pixels[0], direct)


def test_tile_cache_is_bounded_in_bytes_and_least_recently_used():
    cache = TileCache(max_bytes=3 * 1000)
    for k in range(3):
        cache.put(k, np.zeros(1000, np.uint8))
    assert cache.get(0) is not None  # 0 is now the most recent
    cache.put(3, np.zeros(1000, np.uint8))
    assert cache.get(1) is None and cache.get(0) is not None
    assert cache.nbytes <= 3000 and len(cache) == 3
    cache.put("huge", np.zeros(5000, np.uint8))
    assert "huge" not in cache


def test_slides_without_mpp_need_one_for_a_grid():
    from pathview.errors import MissingMppError

    with open_slide(SLIDES / "he-patch-3level.tif") as slide:
        with pytest.raises(MissingMppError):
            tile_grid(slide)


def test_areas_the_overview_cannot_decode_are_tried_not_dropped():
    with open_slide(CMU_SVS) as slide:
        intact = detect_tissue(slide)
        assert intact.unreadable is None
        full = tile_grid(slide, mpp=0.5, size=224, mask=intact)
    with open_slide(BROKEN / "CMU-1-Small-Region-zeroed-tiles.svs") as slide:
        mask = detect_tissue(slide)
        assert mask.unreadable is not None and 0 < mask.unreadable.mean() < 0.9  # drawn grey, not tissue
        grid = tile_grid(slide, mpp=0.5, size=224, mask=mask)
        seen = tile_grid(slide, mpp=0.5, size=224, mask=TissueMask(mask.mask, mask.scale_x, mask.scale_y))
    # the same scan intact has tissue under the damaged area: the grid must try those places
    assert len(seen) < len(full) <= len(grid)
    assert set(map(tuple, full.coords.tolist())) <= set(map(tuple, grid.coords.tolist()))


def _with_damaged_coarse_levels(out) -> None:
    """CMU-1 written as a pyramid whose every level but the full resolution has half of each tile zeroed."""
    import tifffile

    from pathview.slide.writer import write_image_svs

    with open_slide(CMU_SVS) as slide:
        write_image_svs(out, slide.read_region((0, 0), 0, slide.dimensions), mpp=slide.mpp)
    with tifffile.TiffFile(out) as tif:
        tiles = [(o, c) for i, page in enumerate(tif.pages) if i > 0 and page.is_tiled
                 for o, c in zip(page.dataoffsets, page.databytecounts)]
    with open(out, "r+b") as f:
        for offset, count in tiles:
            f.seek(offset + count // 2)
            f.write(b"\0" * (count - count // 2))


def test_a_damaged_coarse_level_is_read_from_the_full_resolution_instead(tmp_path):
    from pathview.analysis.analyze import analyze_slide
    from pathview.errors import RegionReadError

    damaged = tmp_path / "coarse-damaged.svs"
    _with_damaged_coarse_levels(damaged)
    with open_slide(damaged) as slide, open_slide(CMU_SVS) as intact:
        assert slide.level_count == 2
        with pytest.raises(RegionReadError):
            slide.read_region((0, 0), 1, (64, 64))  # the level an overview would use is broken
        mask, reference = detect_tissue(slide), detect_tissue(intact)
        assert mask.unreadable is None  # read from level 0 instead, not drawn grey
        overlap = (mask.mask & reference.mask).sum() / (mask.mask | reference.mask).sum()
        assert overlap > 0.95
    for tile_mpp in (2.0, 0.5):  # 2 µm/px reads the damaged level for tiles too
        got = analyze_slide(damaged, tmp_path / f"a{tile_mpp}", device="cpu", tile_mpp=tile_mpp)
        ref = analyze_slide(CMU_SVS, tmp_path / f"r{tile_mpp}", device="cpu", tile_mpp=tile_mpp)
        assert got["unreadable_tiles"] == 0 and got["tiles"] == ref["tiles"] > 0
        assert got["tissue_mm2"] == pytest.approx(ref["tissue_mm2"], rel=0.05)
