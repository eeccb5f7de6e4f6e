"""`pathview import / export / annotations`, run as a user runs them (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ANNOTATIONS, CMU_SVS, TCGA_NO_MPP


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pathview", *args], capture_output=True, text=True, timeout=120)


def test_import_list_and_export_every_format(tmp_path):
    ws = str(tmp_path / "ws")
    beside_slide = sorted(os.listdir(CMU_SVS.parent))
    res = run("import", str(CMU_SVS), str(ANNOTATIONS / "qupath" / "qupath-polygon-cell-classified.json"),
              str(ANNOTATIONS / "asap" / "asap-polygon.xml"), "--workspace", ws)
    assert res.returncode == 0, res.stderr
    assert "imported 5 annotations" in res.stdout
    assert "pathview: warning: qupath-polygon-cell-classified.json: 4 of 4 annotations reach outside" in res.stderr
    res = run("annotations", str(CMU_SVS), "--workspace", ws, "--json")
    records = json.loads(res.stdout)
    assert [r["class"] for r in records] == ["Cell", "Cell", "Nucleus", "Nucleus", None]
    assert "Area µm²" in records[0]["measurements"]
    listed = [line.split()[0] for line in run("annotations", str(CMU_SVS), "--workspace", ws).stdout.splitlines()]
    assert len(set(listed)) == len(records)  # short ids, but each tells its annotation apart
    assert all(r["id"].startswith(short) for r, short in zip(records, listed))
    for fmt in ("geojson", "pdf"):  # the other formats are tested in-process
        out = tmp_path / f"out.{fmt}"
        res = run("export", str(CMU_SVS), "--format", fmt, "-o", str(out), "--workspace", ws)
        assert res.returncode == 0 and out.stat().st_size > 100, res.stderr
    assert len(json.loads((tmp_path / "out.geojson").read_text())["features"]) == 5
    assert "Nucleus" in run("annotations", str(CMU_SVS), "--workspace", ws).stdout
    assert sorted(os.listdir(CMU_SVS.parent)) == beside_slide  # nothing written beside the slide


def test_a_bad_file_exits_2_with_one_line_and_keeps_the_annotations(tmp_path):
    ws = str(tmp_path / "ws")
    assert run("import", str(CMU_SVS), str(ANNOTATIONS / "asap" / "asap-dot.xml"), "--workspace", ws).returncode == 0
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "Feature", "geometry": {"type": "Point", "coordinates": ["x", 1]}}')
    res = run("import", str(CMU_SVS), str(ANNOTATIONS / "asap" / "asap-polygon.xml"), str(bad), "--workspace", ws)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.geojson" in lines[0] and "no annotation was changed" in lines[0]
    assert len(json.loads(run("annotations", str(CMU_SVS), "--workspace", ws, "--json").stdout)) == 1
    res = run("export", str(CMU_SVS), "--format", "docx", "-o", str(tmp_path / "x"), "--workspace", ws)
    assert res.returncode == 2 and "unknown format 'docx'" in res.stderr


def test_a_pixel_size_declared_in_the_viewer_holds_on_the_command_line(tmp_path):
    from pathview.pixel_sizes import DeclaredPixelSizes
    from pathview.slide import open_slide
    from pathview.workspace import Workspace

    ws = tmp_path / "ws"
    rect = ANNOTATIONS / "qupath" / "qupath-rectangle.json"
    assert run("import", str(TCGA_NO_MPP), str(rect), "--workspace", str(ws)).returncode == 0
    (before,) = json.loads(run("annotations", str(TCGA_NO_MPP), "--workspace", str(ws), "--json").stdout)
    assert "Area px²" in before["measurements"] and "Area µm²" not in before["measurements"]
    with open_slide(TCGA_NO_MPP) as slide:
        DeclaredPixelSizes(Workspace.at(ws)).remember(slide.quickhash, 0.5)  # what View > Set pixel size... files
    (after,) = json.loads(run("annotations", str(TCGA_NO_MPP), "--workspace", str(ws), "--json").stdout)
    assert after["measurements"]["Area µm²"] == before["measurements"]["Area px²"] * 0.25
    (given,) = json.loads(run("annotations", str(TCGA_NO_MPP), "--workspace", str(ws), "--json",
                              "--slide-mpp", "0.25").stdout)  # a value given on the command line wins
    assert given["measurements"]["Area µm²"] == before["measurements"]["Area px²"] * 0.0625
