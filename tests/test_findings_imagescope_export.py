"""ImageScope XML export and the reader's negative (exclusion) regions, on the real annotation files."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import shapely
from conftest import ANNOTATION_FILES, CMU_SVS
from defusedxml import ElementTree as SafeET

from pathview.findings import Annotation, FindingsStore, ellipse, rectangle
from pathview.findings.interchange import export_annotations, import_files, read_file

HOLED = shapely.Polygon([(0, 0), (100, 0), (100, 100), (0, 100)], [[(20, 20), (40, 20), (40, 40), (20, 40)]])



def _as(info, quickhash):
    return dataclasses.replace(info, quickhash=quickhash)


def _sorted(annotations: list[Annotation]) -> list[Annotation]:
    """Layers group annotations by class, so compare them in an order that does not depend on the file's."""
    return sorted(annotations, key=lambda a: (a.class_name or "", a.name, tuple(round(b, 1) for b in a.bounds)))


def _holes(geometry) -> list[int]:
    return [len(p.interiors) for p in getattr(geometry, "geoms", [geometry]) if p.geom_type == "Polygon"]


@pytest.mark.parametrize("path", ANNOTATION_FILES, ids=lambda p: p.name)
def test_every_shared_file_round_trips_through_imagescope_xml(path, store, slide, tmp_path):
    import_files(store, _as(slide.info, "first"), [path])
    out = tmp_path / "out.xml"
    warnings = export_annotations(store, _as(slide.info, "first"), "imagescope", out)
    assert warnings == ([] if path.name != "qupath-polyline.json" else
                        ["open polylines written as rulers through all their vertices, as ImageScope has no polyline (1): "
                         "'polyline'"])
    import_files(store, _as(slide.info, "second"), [out])
    before, after = _sorted(store.annotations("first")), _sorted(store.annotations("second"))
    assert len(after) == len(before)
    for a, b in zip(before, after):
        assert b.geometry.geom_type == a.geometry.geom_type
        assert shapely.hausdorff_distance(a.geometry, b.geometry) <= 0.01
        assert _holes(b.geometry) == _holes(a.geometry)
        assert (b.class_name, b.name, b.note) == (a.class_name, a.name, a.note)


def test_layers_colours_region_types_and_holes_are_written_as_imagescope_reads_them(store, slide, tmp_path):
    moved_vertex = shapely.Polygon([(53, 15)] + list(ellipse(0, 0, 50, 30).exterior.coords)[1:-1])  # reshaped
    store.add_many(slide.info.quickhash, [
        Annotation(rectangle(10, 20, 110, 70), kind="rectangle", class_name="Tumor", name="box", note="first\nline"),
        Annotation(ellipse(200, 200, 260, 240), kind="ellipse", class_name="Tumor"),
        Annotation(moved_vertex, kind="ellipse", class_name="Stroma"),
        Annotation(HOLED, class_name="Stroma", name="holed"),
        Annotation(shapely.LineString([(0, 0), (30, 40)]), kind="line", color=(0, 0, 255)),
        Annotation(shapely.Point(5, 6), kind="point", color=(0, 0, 255)),
    ])
    out = tmp_path / "out.xml"
    assert export_annotations(store, slide, "imagescope", out) == []
    root = SafeET.parse(out).getroot()
    assert float(root.get("MicronsPerPixel")) == slide.info.mpp
    layers = root.findall("Annotation")
    assert [(layer.get("Name"), int(layer.get("LineColor"))) for layer in layers] == [
        ("Tumor", 200), ("Stroma", 150 << 16 | 200 << 8 | 150), ("", 255 << 16)]  # BGR
    types = [[(r.get("Type"), r.get("NegativeROA"), len(r.findall("Vertices/Vertex"))) for r in layer.iter("Region")]
             for layer in layers]
    assert types == [[("1", "0", 4), ("2", "0", 2)], [("0", "0", 72), ("0", "0", 4), ("0", "1", 4)],
                     [("4", "0", 2), ("5", "0", 1)]]
    box = layers[0].find("Regions/Region")
    assert box.get("Text") == "box" and box.find("Attributes/Attribute[@Name='Description']").get("Value") == \
        "first\nline"
    back = {a.name or a.kind: a for a in read_file(out).annotations}
    assert back["box"].kind == "rectangle" and back["box"].note == "first\nline"
    assert back["ellipse"].kind == "ellipse" and back["polygon"].kind == "polygon"  # the edited one: an outline
    assert back["holed"].geometry.equals(HOLED) and back["line"].color == (0, 0, 255)


def _imagescope(layers: str) -> str:
    return f'<Annotations MicronsPerPixel="0.5">{layers}</Annotations>'


def _layer(name: str, *regions: str) -> str:
    return f'<Annotation Id="1" Name="{name}" LineColor="255"><Regions>{"".join(regions)}</Regions></Annotation>'


def _region(region_id: int, box: tuple[float, float, float, float], negative: bool = False, kind: str = "0") -> str:
    x0, y0, x1, y1 = box
    vertices = "".join(f'<Vertex X="{x}" Y="{y}"/>' for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)))
    return (f'<Region Id="{region_id}" Type="{kind}" NegativeROA="{int(negative)}" Text="r{region_id}">'
            f"<Vertices>{vertices}</Vertices></Region>")


def test_negative_regions_are_cut_from_the_outline_of_their_layer_they_lie_in(tmp_path):
    path = tmp_path / "negative.xml"
    path.write_text(_imagescope(
        _layer("Tumor", _region(1, (0, 0, 100, 100)),
               _region(2, (20, 20, 60, 60), negative=True),  # ImageScope's negative pen: a hole in region 1
               _region(3, (30, 30, 40, 40)),  # an island drawn inside the hole stays whole
               _region(4, (500, 500, 510, 510), negative=True))  # inside no outline
        + _layer("Stroma", _region(1, (0, 0, 100, 100), kind="1"))))  # another layer is not cut
    result = read_file(path)
    tumour, island, stroma = result.annotations
    assert tumour.geometry.equals(shapely.box(0, 0, 100, 100).difference(shapely.box(20, 20, 60, 60)))
    assert tumour.kind == "polygon" and island.geometry.equals(shapely.box(30, 30, 40, 40))
    assert stroma.geometry.equals(shapely.box(0, 0, 100, 100)) and stroma.kind == "rectangle"
    assert result.warnings == ["negative regions inside no outline of their layer skipped (1): layer 1 region 4"]


def test_the_cli_exports_imagescope(tmp_path, slide):
    ws = tmp_path / "ws"
    with FindingsStore.open(ws) as store:
        store.add(slide.info.quickhash, Annotation(rectangle(10, 10, 50, 50), kind="rectangle", class_name="Tumor"))
    out = tmp_path / "out.xml"
    res = subprocess.run([sys.executable, "-m", "pathview", "export", str(CMU_SVS), "--format", "imagescope",
                          "-o", str(out), "--workspace", str(ws)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"wrote {out} (1 annotation, imagescope)"
    (tumour,) = read_file(out).annotations
    assert (tumour.class_name, tumour.kind, tumour.bounds) == ("Tumor", "rectangle", (10, 10, 50, 50))
