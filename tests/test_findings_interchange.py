"""Import and export on the real annotation files: QuPath GeoJSON, ASAP XML, ImageScope XML, CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import pytest
import shapely
from conftest import ANNOTATION_FILES, ANNOTATIONS, TCGA_NO_MPP
from shapely.geometry import shape

from pathview.findings import Annotation, AnnotationImportError, ellipse
from pathview.findings import geojson as geojson_module
from pathview.findings.interchange import export_annotations, import_files, read_file
from pathview.slide import open_slide




def _as(info, quickhash):
    return dataclasses.replace(info, quickhash=quickhash)


def _assert_same(before: list[Annotation], after: list[Annotation]) -> None:
    assert len(after) == len(before)
    for a, b in zip(before, after):
        assert b.geometry.geom_type == a.geometry.geom_type
        assert shapely.hausdorff_distance(a.geometry, b.geometry) <= 0.01
        assert (b.class_name, b.name, b.kind, b.note, b.locked) == (a.class_name, a.name, a.kind, a.note, a.locked)
        for k, v in a.measurements.items():
            assert b.measurements[k] == pytest.approx(v, nan_ok=True)


def test_every_shared_file_is_covered():
    assert {p.parent.name for p in ANNOTATION_FILES} == {"qupath", "asap", "imagescope"} and len(ANNOTATION_FILES) == 16


@pytest.mark.parametrize("path", ANNOTATION_FILES, ids=lambda p: p.name)
def test_round_trip_through_qupath_geojson_keeps_geometry_classes_names_measurements(path, store, slide, tmp_path):
    report = import_files(store, _as(slide.info, "first"), [path])
    assert report.count > 0 and any("outside the slide" in w for w in report.warnings)  # not this slide's file
    before = store.annotations("first")
    out = tmp_path / "out.geojson"
    export_annotations(store, _as(slide.info, "first"), "geojson", out)
    doc = json.loads(out.read_text())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == len(before)
    for feature in doc["features"]:
        geom = shape(feature["geometry"])
        assert geom.is_valid, feature["properties"].get("name")  # QuPath 0.6 rejects invalid polygons
        assert feature["properties"]["objectType"] in ("annotation", "detection", "cell")
    import_files(store, _as(slide.info, "second"), [out])
    _assert_same(before, store.annotations("second"))


@pytest.mark.parametrize("path", [p for p in ANNOTATION_FILES if p.parent.name == "asap"], ids=lambda p: p.name)
def test_round_trip_through_asap_xml(path, store, slide, tmp_path):
    import_files(store, _as(slide.info, "first"), [path])
    out = tmp_path / "out.xml"
    assert export_annotations(store, _as(slide.info, "first"), "asap", out) == []
    import_files(store, _as(slide.info, "second"), [out])
    _assert_same(store.annotations("first"), store.annotations("second"))


def test_asap_holes_go_out_as_an_exclusion_group_and_come_back(store, slide, tmp_path):
    holed = shapely.Polygon([(0, 0), (100, 0), (100, 100), (0, 100)], [[(20, 20), (40, 20), (40, 40), (20, 40)]])
    island = Annotation(shapely.box(25, 25, 35, 35), class_name="Stroma", name="island")  # inside the hole
    store.add_many("first", [Annotation(holed, kind="rectangle", class_name="Tumor", name="holed"), island])
    out = tmp_path / "out.xml"
    assert export_annotations(store, _as(slide.info, "first"), "asap", out) == []  # nothing lost: no warning
    assert out.read_text().count('PartOfGroup="_exclusion"') == 1
    result = read_file(out)
    assert [c.name for c in result.classes] == ["Stroma", "Tumor"]  # the exclusion group is no class
    back, island_back = result.annotations
    assert back.geometry.equals(holed) and back.kind == "rectangle"
    assert island_back.geometry.equals(island.geometry)


def test_qupath_details_survive_the_round_trip(store, slide, tmp_path):
    info = _as(slide.info, "first")
    holed = shapely.Polygon([(0, 0), (100, 0), (100, 100), (0, 100)], [[(20, 20), (40, 20), (40, 40), (20, 40)]])
    store.add_many("first", [
        Annotation(ellipse(10, 10, 90, 50), kind="ellipse", class_name="Tumor", locked=True, note="a\nb"),
        Annotation(holed, class_name="Necrosis", name="holed"),
        Annotation(shapely.MultiPolygon([shapely.box(0, 0, 5, 5), shapely.box(10, 10, 15, 15)]), kind="brush"),
        Annotation(shapely.MultiPoint([(1, 2), (3, 4)]), kind="points", measurements={"Odd": float("nan")}),
    ])
    out = tmp_path / "out.geojson"
    export_annotations(store, info, "geojson", out)
    features = json.loads(out.read_text())["features"]
    assert features[0]["geometry"]["isEllipse"] is True and features[0]["properties"]["isLocked"] is True
    assert features[0]["properties"]["classification"] == {"name": "Tumor", "color": [200, 0, 0]}
    assert "isLocked" not in features[1]["properties"] and len(features[1]["geometry"]["coordinates"]) == 2
    assert features[1]["properties"]["measurements"]["Area µm²"] == pytest.approx((10_000 - 400) * 0.499 ** 2)
    assert features[3]["properties"]["measurements"]["Odd"] == "NaN"
    import_files(store, _as(slide.info, "second"), [out])
    _assert_same(store.annotations("first"), store.annotations("second"))


def test_a_reimported_then_reshaped_annotation_shows_only_its_current_area(store, slide, tmp_path):
    from pathview.findings.report import collect

    info = slide.info
    store.add(info.quickhash, Annotation(shapely.box(100, 100, 300, 300), kind="rectangle", measurements={"Odd": 2.0}))
    out = tmp_path / "out.geojson"
    export_annotations(store, info, "geojson", out)
    store.clear(info.quickhash)
    import_files(store, info, [out])  # pathview's own export: its areas are recomputed, not kept
    (a,) = store.annotations(info.quickhash)
    assert a.measurements == {"Odd": 2.0}
    store.update(info.quickhash, a.with_(geometry=shapely.box(100, 100, 500, 500)))  # reshaped in the viewer
    (finding,) = collect(store, slide).findings
    assert [line for line in finding.measurements if line.startswith("Area")] == \
        [f"Area µm²: {400 * 400 * info.mpp ** 2:,.1f}"]


def test_older_qupath_classification_and_cells_are_read(tmp_path):
    doc = [{"type": "Feature", "id": "PathCellObject", "geometry": {"type": "Polygon", "coordinates": [
        [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]}, "properties": {
        "objectType": "cell", "classification": {"names": ["Tumor", "Positive"], "colorRGB": -3670016},
        "measurements": [{"name": "Nucleus: Area", "value": 12.5}, {"name": "Bad", "value": "x"}],
        "nucleusGeometry": {"type": "Polygon", "coordinates": [[[2, 2], [4, 2], [4, 4], [2, 2]]]}}}]
    path = tmp_path / "cells.json"
    path.write_text(json.dumps(doc))
    result = read_file(path)
    (cell,) = result.annotations
    assert (cell.object_type, cell.class_name, cell.measurements) == ("cell", "Tumor: Positive", {"Nucleus: Area": 12.5})
    assert result.classes[0].color == (200, 0, 0) and "nucleusGeometry" in cell.extra
    assert any("not numbers" in w and "'Bad'" in w for w in result.warnings)
    no_geometry = tmp_path / "none.json"
    no_geometry.write_text(json.dumps([{"type": "Feature", "geometry": None, "properties": {"name": "empty"}},
                                       {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}]))
    result = read_file(no_geometry)
    assert len(result.annotations) == 1 and any("without a geometry" in w and "empty" in w for w in result.warnings)
    bare = tmp_path / "bare.geojson"
    bare.write_text(json.dumps({"type": "LineString", "coordinates": [[0, 0], [5, 5], [9, 1]]}))
    assert read_file(bare).annotations[0].kind == "polyline"


def test_self_intersecting_polygons_are_repaired_with_a_warning(store, slide, tmp_path):
    bowtie = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [100, 100], [100, 0],
                                                                                   [0, 100], [0, 0]]]},
              "properties": {"name": "bowtie"}}
    path = tmp_path / "bowtie.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [bowtie]}))
    report = import_files(store, slide.info, [path])
    assert any("self-intersecting" in w and "bowtie" in w for w in report.warnings)
    (stored,) = store.annotations(slide.info.quickhash)
    assert stored.geometry.is_valid and stored.geometry.area == pytest.approx(5000)
    # One drawn invalid in the viewer is made valid on the way out.
    store.add(slide.info.quickhash, Annotation(shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])))
    out = tmp_path / "out.geojson"
    export_annotations(store, slide, "geojson", out)
    assert all(shape(f["geometry"]).is_valid for f in json.loads(out.read_text())["features"])


BAD_FILES = {
    "broken.json": ('{"type": "FeatureCollection", "features": [', "not valid JSON"),
    "nan.json": ('{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [NaN, 1], [1, 1], '
                 '[0, 0]]]}, "properties": {"name": "x"}}', "not a number"),
    "strings.json": ('[{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": "abc"}}]', "feature 1"),
    "type.json": ('{"type": "Feature", "geometry": {"type": "Circle", "coordinates": [1, 2]}}', "'Circle'"),
    "notgeo.json": ('{"hello": 1}', "not GeoJSON"),
    "broken.xml": ("<ASAP_Annotations><Annotations>", "not valid XML"),
    "asap-nan.xml": ('<ASAP_Annotations><Annotations><Annotation Name="a" Type="Polygon"><Coordinates>'
                     '<Coordinate Order="0" X="nan" Y="1"/></Coordinates></Annotation></Annotations>'
                     "</ASAP_Annotations>", "not a number"),
    "asap-order.xml": ('<ASAP_Annotations><Annotations><Annotation Name="a" Type="Polygon"><Coordinates>'
                       '<Coordinate Order="first" X="1" Y="1"/></Coordinates></Annotation></Annotations>'
                       "</ASAP_Annotations>", "annotation 1 ('a'): a coordinate"),
    "entities.xml": ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]><ASAP_Annotations>&x;</ASAP_Annotations>',
                     "unsafe"),
    "other.txt": ("hello", "not a known annotation format"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_files_give_a_clear_message_and_change_nothing(name, store, slide, tmp_path):
    good = ANNOTATIONS / "qupath" / "qupath-polygon.json"
    import_files(store, slide.info, [good])
    before = [a.id for a in store.annotations(slide.info.quickhash)]
    text, expected = BAD_FILES[name]
    bad = tmp_path / name
    bad.write_text(text)
    with pytest.raises(AnnotationImportError) as info:
        import_files(store, slide.info, [good, bad])  # one good file first: still all or nothing
    assert expected in str(info.value) and name in str(info.value) and "no annotation was changed" in str(info.value)
    assert [a.id for a in store.annotations(slide.info.quickhash)] == before


def test_too_many_features_are_refused_before_anything_is_stored(store, slide, tmp_path, monkeypatch):
    monkeypatch.setattr(geojson_module, "MAX_OBJECTS", 1000)
    path = tmp_path / "many.json"
    path.write_text(json.dumps([{"type": "Feature", "geometry": {"type": "Point", "coordinates": [i, i]}}
                                for i in range(1001)]))
    with pytest.raises(AnnotationImportError, match="1,001 objects, more than the 1,000"):
        import_files(store, slide.info, [path])
    assert store.count(slide.info.quickhash) == 0


def test_imagescope_classes_colours_and_pixel_size_check(store, slide):
    path = ANNOTATIONS / "imagescope" / "TCGA-EJ-5518-01Z-00-DX1.xml"
    report = import_files(store, slide.info, [path])
    assert report.count == 4 and any("0.252 µm/px" in w for w in report.warnings)
    anns = store.annotations(slide.info.quickhash)
    assert all(a.geometry.is_valid for a in anns)
    # Layer 1 is named by its attribute "CaP"; layers 3 and 4 have none and keep their BGR line colours.
    # Their regions are ImageScope Type 0 (freehand, hundreds of vertices): polygons, not rectangles (Type 1).
    assert [(a.class_name, a.color, a.kind) for a in anns] == [
        ("CaP", None, "polygon"), ("CaP", None, "polygon"), (None, (255, 0, 0), "polygon"),
        (None, (0, 255, 255), "polygon")]
    assert anns[0].measurements["ImageScope area µm²"] == pytest.approx(1844565.8)
    assert store.class_colors()["CaP"] == (0, 255, 0)  # LineColor 65280 is BGR green


def test_csv_has_units_in_names_and_records_the_mpp(store, slide, tmp_path):
    import_files(store, slide.info, [ANNOTATIONS / "qupath" / "qupath-rectangle.json",
                                     ANNOTATIONS / "qupath" / "qupath-line.json"])
    out = tmp_path / "m.csv"
    export_annotations(store, slide, "csv", out)
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert float(rows[0]["Area µm²"]) == pytest.approx(210 * 176 * 0.499 ** 2)
    assert float(rows[1]["Length µm"]) == pytest.approx(shapely.LineString([(26096.35, 15240.5),
                                                                            (26230.6, 15580.39)]).length * 0.499)
    assert rows[0]["mpp"] == "0.499" and rows[0]["mpp source"] == "slide" and rows[0]["name"] == "rectangle"
    with open_slide(TCGA_NO_MPP) as no_mpp:
        import_files(store, no_mpp.info, [ANNOTATIONS / "qupath" / "qupath-rectangle.json"])
        export_annotations(store, no_mpp, "csv", out)
    row = next(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert float(row["Area px²"]) == 210 * 176 and row["mpp"] == "" and row["mpp source"] == "none"


def test_importing_the_same_file_again_warns(store, slide):
    path = ANNOTATIONS / "qupath" / "qupath-polygon.json"
    first = import_files(store, slide.info, [path])
    assert not any("already on this slide" in w for w in first.warnings)
    again = import_files(store, slide.info, [path])
    assert again.count == 1 and any("the only annotation is already on this slide" in w for w in again.warnings)
    two = import_files(store, slide.info, [path, ANNOTATIONS / "qupath" / "qupath-rectangle.json"])
    assert any("1 of 2 annotations is already on this slide" in w for w in two.warnings)
