"""Shared fixtures: the real slides in ../shared/data and a demo slide made once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PATHVIEW_SHARED_DATA", ROOT.parent / "shared" / "data"))
SLIDES = DATA / "slides"
BROKEN = SLIDES / "broken"
ANNOTATIONS = DATA / "annotations"

CMU_SVS = SLIDES / "CMU-1-Small-Region.svs"
CMU_DICOM = SLIDES / "CMU-1-Small-Region-dicom"
TCGA_NO_MPP = SLIDES / "TCGA-CR-7395-01A-01-TS1.svs"

if not SLIDES.is_dir():
    raise RuntimeError(f"test data not found at {DATA}: the tests read ../shared/data in place")


@pytest.fixture(scope="session")
def demo_slide(tmp_path_factory) -> Path:
    """The built-in demo slide, rendered once for the whole run."""
    from pathview.slide.demo import demo_slide_path

    return demo_slide_path(tmp_path_factory.mktemp("demo"))
