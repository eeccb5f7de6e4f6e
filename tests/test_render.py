"""Direct JPEG decoding and view rendering agree with OpenSlide's own pixels."""

from __future__ import annotations

import numpy as np
import openslide
import pytest
from conftest import CMU_SVS
from PIL import Image

from pathview.render import render_view
from pathview.slide import open_slide
from pathview.slide.reader import rgba_to_rgb
from pathview.tiles import TileSource
from pathview.viewport import Viewport, display_level, fit_viewport, visible_tiles


def openslide_rgb(path, location, level, size) -> np.ndarray:
    with openslide.OpenSlide(path) as osr:
        return rgba_to_rgb(np.asarray(osr.read_region(location, level, size)))


@pytest.mark.parametrize("box", [(0, 0, 500, 300), (133, 77, 700, 650), (-40, -25, 300, 200), (2000, 2800, 400, 400)])
def test_direct_jpeg_reads_equal_openslide_exactly(box):
    x, y, w, h = box
    with open_slide(CMU_SVS) as slide:
        assert slide._jpeg is not None, "SVS JPEG tiles take the fast path"
        ours = slide.read_region((x, y), 0, (w, h))
    assert np.array_equal(ours, openslide_rgb(CMU_SVS, (x, y), 0, (w, h)))


def test_demo_pyramid_levels_equal_openslide(demo_slide):
    with open_slide(demo_slide) as slide:
        for level in range(slide.level_count):
            d = slide.level_downsamples[level]
            ours = slide.read_region((int(640 * d), int(480 * d)), level, (200, 150))
            assert np.array_equal(ours, openslide_rgb(demo_slide, (int(640 * d), int(480 * d)), level, (200, 150)))


def test_scaled_reads_match_a_full_decode_and_resize():
    with open_slide(CMU_SVS) as slide:
        box = (300, 500, 1600, 1200)
        for factor in (2, 3, 4, 8):
            ours = slide.read_scaled(box, (1600 // factor, 1200 // factor)).astype(np.int16)
            ref = Image.fromarray(openslide_rgb(CMU_SVS, box[:2], 0, box[2:]))
            ref = np.asarray(ref.resize(ours.shape[1::-1], Image.Resampling.BOX)).astype(np.int16)
            assert np.abs(ours - ref).mean() < 4.0, factor


@pytest.mark.parametrize("magnification", [40, 20, 5, 1.25])
def test_render_matches_openslide_pixels_of_the_same_region(magnification):
    with open_slide(CMU_SVS) as slide:
        center, size = (1110.0, 1480.0), (400, 300)
        ours = render_view(TileSource(slide), center, magnification, size).astype(np.int16)
        ds = 10.0 / magnification / slide.mpp
    x0, y0 = center[0] - size[0] * ds / 2, center[1] - size[1] * ds / 2
    full = Image.fromarray(openslide_rgb(CMU_SVS, (0, 0), 0, (2220, 2967)))
    canvas = Image.new("RGB", (2220 + 8000, 2967 + 8000), (255, 255, 255))
    canvas.paste(full, (4000, 4000))  # glass around the slide, as the viewer shows it
    ref = canvas.resize(size, Image.Resampling.BILINEAR,
                        box=(x0 + 4000, y0 + 4000, x0 + 4000 + size[0] * ds, y0 + 4000 + size[1] * ds))
    diff = np.abs(ours - np.asarray(ref).astype(np.int16))
    assert diff.mean() < 6.0


def test_visible_tiles_cover_the_view_nearest_first(demo_slide):
    with open_slide(demo_slide) as slide:
        view = fit_viewport(slide.dimensions, 800, 600).zoomed(2)
        level = display_level(slide.level_downsamples, view.downsample)
        assert slide.level_downsamples[level] <= view.downsample * 1.01
        keys = visible_tiles(view, level, slide.level_downsamples[level], slide.level_dimensions[level])
    assert keys, "a zoomed-in view shows some tiles"
    span = 512 * slide.level_downsamples[level]
    first = keys[0]
    assert first.col * span <= view.cx <= (first.col + 1) * span + 1
    assert Viewport(0, 0, 1, 10, 10).zoomed(2, anchor=(5, 5)).to_level0(5, 5) == (0.0, 0.0)
