"""The Heatmap dock shows every score-layer switch without scrolling, beside the Regions and Assistant docks."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect
from test_app_analysis import analysed, marked_slide, user_settings, window, workspace  # noqa: F401  (fixtures)

from pathview.app.analysis_result import LAYERS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_layer_switch_is_visible_in_a_1440_by_860_window(window, qtbot, analysed, marked_slide):
    window.resize(1440, 860)
    ctl = window.analysis
    ctl.add_scan_dir(analysed)
    window.open_path(str(marked_slide))
    assert ctl.result is not None
    qtbot.waitUntil(lambda: window.size().toTuple() == (1440, 860))
    for dock in (ctl.heatmap_dock, ctl.regions_dock, window.assistant_dock):
        assert dock.isVisible() and not dock.visibleRegion().isEmpty(), dock.windowTitle()
    panel = ctl.heatmap_panel
    area = ctl.heatmap_dock.widget()
    viewport = area.viewport().rect()
    assert area.verticalScrollBar().maximum() == 0  # nothing to scroll to
    assert list(panel.layer_boxes) == list(LAYERS)
    for name, box in panel.layer_boxes.items():
        where = QRect(box.mapTo(area.viewport(), QPoint(0, 0)), box.size())
        assert viewport.contains(where), f"{name} switch at {where.getRect()}, outside the dock's {viewport.getRect()}"
        assert not box.visibleRegion().isEmpty(), name
        assert "% of tiles" in box.text()  # the shares the analysis adds fit as well
        assert box.width() >= box.sizeHint().width(), f"{name} switch cut short"
