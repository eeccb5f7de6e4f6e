"""Shared fixtures: the real slides in ../shared/data and a demo slide made once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["assistant_fixtures"]

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PATHVIEW_SHARED_DATA", ROOT.parent / "shared" / "data"))
SLIDES = DATA / "slides"
BROKEN = SLIDES / "broken"
ANNOTATIONS = DATA / "annotations"

CMU_SVS = SLIDES / "CMU-1-Small-Region.svs"
CMU_DICOM = SLIDES / "CMU-1-Small-Region-dicom"
TCGA_NO_MPP = SLIDES / "TCGA-CR-7395-01A-01-TS1.svs"
#: Every annotation file of ../shared/data (QuPath GeoJSON, ASAP and ImageScope XML).
ANNOTATION_FILES = sorted(p for p in ANNOTATIONS.rglob("*") if p.suffix in (".json", ".geojson", ".xml"))

if not SLIDES.is_dir():
    raise RuntimeError(f"test data not found at {DATA}: the tests read ../shared/data in place")


def cmu_with_ink(out: Path, strokes: list[tuple[tuple[int, int, int, int], str]], seed: int) -> Path:
    """Write CMU-1-Small-Region with pen strokes painted in at known level-0 boxes (x, y, w, h) in the given
    inks, as an SVS at ``out``: slides with artifacts whose places the tests know."""
    import numpy as np

    from pathview.analysis import inject
    from pathview.slide import open_slide
    from pathview.slide.writer import write_image_svs

    with open_slide(CMU_SVS) as slide:
        img = slide.read_region((0, 0), 0, slide.dimensions).copy()
    rng = np.random.default_rng(seed)
    for box, ink in strokes:
        inject.pen(img, box, rng, ink=ink)
    return write_image_svs(out, img, mpp=0.5)


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


@pytest.fixture(scope="module")
def slide():
    """CMU-1-Small-Region.svs, opened once per test module."""
    from pathview.slide import open_slide

    with open_slide(CMU_SVS) as s:
        yield s


@pytest.fixture
def store(tmp_path):
    """A findings store in a fresh workspace (real SQLite)."""
    from pathview.findings import FindingsStore

    with FindingsStore.open(tmp_path / "ws") as s:
        yield s
