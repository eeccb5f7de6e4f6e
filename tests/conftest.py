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


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread: OpenMP teams spin, and on a loaded 2-core machine every op then crawls."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
