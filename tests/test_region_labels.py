"""Rank labels of the analysis regions never cover one another: placed apart, or left out at that zoom."""

from __future__ import annotations

import random
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from conftest import cmu_with_ink
from shapely.geometry import Polygon
from test_app_analysis import user_settings, window, workspace  # noqa: F401  (fixtures: a window on a scratch workspace)

from pathview.analysis.analyze import analyze_slide
from pathview.app.analysis_regions_layer import Outline, label_spots, place_labels
from pathview.app.qimage import from_qimage
from pathview.scan import output_name
from pathview.slide import open_slide
from pathview.viewport import Viewport

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LABEL = (30.0, 20.0)
SCREEN = (0.0, 0.0, 1000.0, 800.0)


def overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def assert_apart(rects) -> None:
    placed = [r for r in rects if r is not None]
    clashes = [(a, b) for a, b in combinations(placed, 2) if overlap(a, b)]
    assert not clashes, f"labels drawn over each other: {clashes[:3]}"


def boxes(*corners: tuple[float, float, float, float]) -> list[Outline]:
    return [Outline.of_box(*c) for c in corners]


def test_neighbours_whose_labels_would_collide_are_labelled_apart():
    # Two small regions side by side, closer than a label is wide: both labels want the same spot above.
    regions = boxes((100, 100, 110, 110), (115, 100, 125, 110))
    assert overlap(label_spots(regions[0], LABEL)[0], label_spots(regions[1], LABEL)[0])
    first, second = place_labels(regions, [LABEL] * 2, bounds=SCREEN)
    assert first == label_spots(regions[0], LABEL)[0]  # the better rank keeps the best spot
    assert second is not None and not overlap(first, second)


def test_a_crowd_leaves_labels_out_rather_than_stacking_them():
    rng = random.Random(0)
    regions = boxes(*[(x, y, x + 8, y + 8) for x, y in ((rng.uniform(400, 440), rng.uniform(300, 340))
                                                         for _ in range(40))])
    placed = place_labels(regions, [LABEL] * len(regions), bounds=SCREEN)
    assert_apart(placed)
    assert placed[0] == label_spots(regions[0], LABEL)[0]
    assert 2 < sum(r is not None for r in placed) < len(regions)  # some fit around the crowd, not all


def test_the_selected_region_is_always_labelled():
    regions = boxes(*[(500 + i, 400, 510 + i, 410) for i in range(10)])  # all on top of each other
    worst = len(regions) - 1
    unselected = place_labels(regions, [LABEL] * len(regions), bounds=SCREEN)
    assert unselected[worst] is None
    placed = place_labels(regions, [LABEL] * len(regions), first=worst, bounds=SCREEN)
    assert placed[worst] == label_spots(regions[worst], LABEL)[0]
    assert_apart(placed)
    # ... even zoomed into it, when none of its spots is on screen: then the label is at the screen's edge.
    zoomed_in = boxes((-100, -100, 1100, 900))
    assert place_labels(zoomed_in, [LABEL], bounds=SCREEN) == [None]
    assert place_labels(zoomed_in, [LABEL], first=0, bounds=SCREEN) == [(0, 0, *LABEL)]


def test_labels_stay_on_screen_and_off_a_neighbours_region_when_they_can():
    # At the top edge the label goes below; a region just under another labels itself below, not on it.
    top = place_labels(boxes((200, 5, 260, 40)), [LABEL], bounds=SCREEN)[0]
    assert top[1] >= 40
    upper, lower = boxes((300, 300, 360, 340), (300, 342, 360, 380))
    placed = place_labels([upper, lower], [LABEL] * 2, bounds=SCREEN)
    assert_apart(placed)
    assert not overlap(placed[1], (upper.x0, upper.y0, upper.x1 - upper.x0, upper.y1 - upper.y0))
    assert placed[1][1] >= lower.y1


def test_an_l_shaped_region_is_labelled_against_its_own_top_row():
    # The box's top-right corner is empty: a label there would sit beside whatever lies right of the L.
    ell = Outline.of_geometry(Polygon([(0, 0), (224, 0), (224, 224), (672, 224), (672, 448), (0, 448)]))
    assert (ell.top_x0, ell.top_x1, ell.bottom_x0, ell.bottom_x1) == (0, 224, 0, 672)
    above_right = label_spots(ell, LABEL)[1]
    assert above_right[0] + above_right[2] == 224


def test_hundreds_of_regions_are_placed_quickly():
    rng = random.Random(1)
    regions = boxes(*[(x, y, x + s, y + s) for x, y, s in ((rng.uniform(0, 1000), rng.uniform(0, 800),
                                                             rng.uniform(3, 40)) for _ in range(1000))])
    start = time.perf_counter()
    placed = place_labels(regions, [LABEL] * len(regions), first=500, bounds=SCREEN)
    assert time.perf_counter() - start < 0.25  # a grid, not every label against every other
    assert_apart(placed)
    assert placed[500] is not None


@pytest.fixture(scope="module")
def dotted_slide(tmp_path_factory) -> Path:
    """CMU-1-Small-Region with nine small ink dots two tiles apart: one-tile regions close to each other."""
    inks = ("green", "blue", "black")
    dots = [((224 * (2 + 2 * i) + 24, 224 * (3 + 2 * j) + 24, 176, 176), inks[(i + j) % 3])
            for i in range(3) for j in range(3)]
    return cmu_with_ink(tmp_path_factory.mktemp("slide") / "CMU-dotted.svs", dots, seed=2)


@pytest.fixture(scope="module")
def dotted_analysis(tmp_path_factory, dotted_slide) -> Path:
    """The dotted slide analysed once, headless, in a `pathview scan -o` folder."""
    with open_slide(dotted_slide) as slide:
        out = tmp_path_factory.mktemp("scan") / output_name(dotted_slide, slide.quickhash)
    assert analyze_slide(dotted_slide, out, device="cpu")["regions"] >= 4
    return out


def test_the_real_layer_draws_each_label_apart_and_the_selected_one_always(window, dotted_slide, dotted_analysis):
    ctl = window.analysis
    ctl.add_scan_dir(dotted_analysis.parent)
    view = window.open_path(str(dotted_slide))
    regions = ctl.result.regions
    layer = ctl.regions_layer

    view.zoom_to_fit()  # the dots are a label's width or more apart: every region is labelled
    assert set(layer.label_rects(view.view)) == {r.id for r in regions}

    w, h = view.view.width, view.view.height
    cx, cy = (v / 2 for v in view.slide.dimensions)
    view.set_view(Viewport(cx, cy, 28.0, w, h))  # so far out that the dots are a few pixels apart
    worst = regions[-1]
    layer.selected = worst.id
    view.repaint()
    rects = layer.label_rects(view.view)
    label = next(iter(rects.values())).getRect()[2:]
    wanted = [label_spots(Outline.of_geometry(r.geometry).on_screen(view.view), label)[0] for r in regions]
    assert any(overlap(a, b) for a, b in combinations(wanted, 2))  # where the labels used to pile up
    assert_apart([r.getRect() for r in rects.values()])
    assert worst.id in rects
    assert ctl.regions_panel.list.count() == len(regions)  # the dock still lists every region

    # The selected label is painted where it was placed: its class colour fills the rectangle.
    image = from_qimage(view.grab().toImage()).astype(np.int16)
    x, y, lw, lh = (round(v) for v in rects[worst.id].getRect())
    inside = image[y + 3:y + lh - 3, x + 3:x + lw - 3, :3]
    assert (np.abs(inside - np.array(worst.color)).max(axis=2) < 40).mean() > 0.3
