"""The PDF and HTML findings reports from a real slide (CMU-1-Small-Region.svs) with annotations."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import shapely
from conftest import CMU_SVS, TCGA_NO_MPP
from PIL import Image

from pathview.findings import Annotation, AssistantAnswer, FindingsStore, ellipse
from pathview.findings.interchange import export_annotations
from pathview.slide import open_slide


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    """CMU-1-Small-Region with four findings (one with an assistant answer) and 300 detections."""
    store = FindingsStore.open(tmp_path_factory.mktemp("ws"))
    slide = open_slide(CMU_SVS)
    qh = slide.info.quickhash
    tumor = Annotation(ellipse(600, 500, 1300, 1100), kind="ellipse", class_name="Tumor", name="Nest",
                       note="Atypia <script>alert(1)</script> & mitoses")
    store.add_many(qh, [
        tumor,
        Annotation(shapely.Polygon([(1500, 1800), (1900, 1700), (2100, 2300), (1600, 2500)]), class_name="Stroma"),
        Annotation(shapely.LineString([(200, 2600), (900, 2800)]), kind="line", name="depth"),
        Annotation(shapely.Point(1100, 2000), kind="point", class_name="Other"),
        *[Annotation(shapely.Point(300 + i, 300 + i), kind="point", object_type="detection") for i in range(300)],
    ])
    seen = io.BytesIO()
    Image.fromarray(slide.read_region((600, 500), 0, (224, 224))).save(seen, format="PNG")
    store.add_answer(qh, tumor.id, AssistantAnswer("What is this?", "Basaloid nests.", "tiny-vlm", image_png=seen.getvalue()))
    yield store, slide
    slide.close()
    store.close()


def test_pdf_has_an_overview_page_and_a_snapshot_per_finding(annotated, tmp_path):
    store, slide = annotated
    out = tmp_path / "report.pdf"
    warnings = export_annotations(store, slide, "pdf", out)
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    images = len(re.findall(rb"/Subtype /Image", data))
    pages = len(re.findall(rb"/Type /Page\b(?!s)", data))
    assert images == 1 + 4 + 1  # the overview, a snapshot per finding (detections get none), the region the AI saw
    assert 3 <= pages <= 5
    assert any("300 objects" in w for w in warnings)
    assert b"CMU-1-Small-Region" not in data  # no file name unless asked


def test_html_is_self_contained_escaped_and_marks_ai_answers(annotated, tmp_path):
    store, slide = annotated
    out = tmp_path / "report.html"
    export_annotations(store, slide, "html", out)
    html = out.read_text(encoding="utf-8")
    assert "<script>" not in html and "Atypia &lt;script&gt;alert(1)&lt;/script&gt; &amp; mitoses" in html
    assert "AI-generated, not a diagnosis" in html and "Basaloid nests." in html
    assert "CMU-1-Small-Region" not in html and slide.info.quickhash in html
    assert "src=\"http" not in html and "file:" not in html
    pictures = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', html)
    assert len(pictures) == 5 and html.count("data:image/png;base64,") == 1  # + the region the assistant saw
    snap = Image.open(io.BytesIO(base64.b64decode(pictures[1])))
    pixels = np.asarray(snap.convert("RGB")).reshape(-1, 3)
    assert max(snap.size) == 600 and len(np.unique(pixels, axis=0)) > 1000  # real tissue, not blank
    assert "Area µm²: " in html and "Finding 4: Other" in html


def test_identifiers_only_when_asked(annotated, tmp_path):
    store, slide = annotated
    out = tmp_path / "report.html"
    export_annotations(store, slide, "html", out, include_identifiers=True)
    assert "CMU-1-Small-Region.svs" in out.read_text(encoding="utf-8")


def test_report_on_a_slide_without_mpp_measures_in_pixels(tmp_path):
    with FindingsStore.open(tmp_path / "ws") as store, open_slide(TCGA_NO_MPP) as slide:
        store.add(slide.info.quickhash, Annotation(shapely.box(100, 100, 400, 300), kind="rectangle"))
        out = tmp_path / "report.html"
        export_annotations(store, slide, "html", out)
    html = out.read_text(encoding="utf-8")
    assert "Area px²: 60,000.0" in html and "slide has no pixel size" in html


def test_class_totals_read_as_a_pathologist_writes_them():
    from pathview.findings.report import _total_area

    assert _total_area(256.0, 0.5) == "64 µm²"  # two small cells: not 6.4e-05 mm²
    assert _total_area(4e6, 0.5) == "1.000 mm²"
    assert _total_area(1234.0, None) == "1,234 px²"
