"""`pathview analyze` and `pathview reference build`: once as a user runs them (a real subprocess), then in-process."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import BROKEN, CMU_DICOM, CMU_SVS, TCGA_NO_MPP


def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pathview", *args], capture_output=True, text=True, timeout=timeout)


def test_analyze_writes_the_folder_and_lists_regions(tmp_path):
    res = run("analyze", str(CMU_SVS), "-o", str(tmp_path / "out"), "--device", "cpu")
    assert res.returncode == 0, res.stderr
    assert "tiles, tissue" in res.stdout and "wrote" in res.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["settings"]["encoder"] == "pathview-he" and summary["device"] == "cpu"
    for name in ("tiles.h5", "findings.geojson", "heatmap.png", "thumbnail.png"):
        assert (tmp_path / "out" / name).is_file()


def test_bad_inputs_exit_2_with_one_clear_line(tmp_path, capsys):
    from pathview.cli import main

    assert main(["analyze", str(TCGA_NO_MPP), "-o", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pathview: error:") and "--slide-mpp" in err and len(err.strip().splitlines()) == 1
    assert main(["analyze", str(BROKEN / "CMU-1-Small-Region-truncated.svs"), "-o", str(tmp_path / "b")]) == 2
    assert "CMU-1-Small-Region-truncated.svs" in capsys.readouterr().err
    assert main(["analyze", str(CMU_SVS), "-o", str(tmp_path / "c"), "--reference", str(tmp_path / "none.h5")]) == 2
    err = capsys.readouterr().err
    assert "reference bank" in err and "not found" in err
    assert main(["reference", "list", str(CMU_SVS), "-o", str(tmp_path / "d.h5")]) == 2
    assert "usage: pathview reference build" in capsys.readouterr().err


def test_reference_build_then_analyze_against_it(tmp_path, capsys, one_torch_thread):
    from pathview.cli import main

    bank = tmp_path / "normal.h5"
    assert main(["reference", "build", str(CMU_SVS), str(CMU_DICOM), "-o", str(bank), "--device", "cpu"]) == 0
    assert "2 slides" in capsys.readouterr().out and bank.is_file()
    assert main(["analyze", str(TCGA_NO_MPP), "--slide-mpp", "0.25", "-o", str(tmp_path / "t"), "--reference",
                 str(bank), "--device", "cpu", "-q"]) == 0
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["settings"]["reference"].startswith("normal.h5:")
    assert summary["anomaly_method"].startswith("reference kNN")
    assert summary["anomaly_fraction"] > 0.5  # frozen head-and-neck tissue is unlike the skin in the bank


def test_a_bank_of_one_slide_is_built_with_a_warning(tmp_path, capsys, one_torch_thread):
    from pathview.cli import main

    bank = tmp_path / "one.h5"
    assert main(["reference", "build", str(CMU_SVS), str(CMU_SVS), "-o", str(bank), "--device", "cpu",
                 "--tile-mpp", "2"]) == 0
    out, err = capsys.readouterr()
    assert "warning: a bank of one slide takes that slide's stain and scanner for normal" in err and bank.is_file()
    assert "from 1 slide (" in out  # the slide named twice counts once


def test_a_slide_with_a_damaged_tile_is_analysed_without_it_and_says_so(tmp_path, capsys):
    from pathview.cli import main

    zeroed = BROKEN / "CMU-1-Small-Region-zeroed-tiles.svs"
    assert main(["analyze", str(zeroed), "-o", str(tmp_path / "a"), "--mpp", "2", "--device", "cpu", "-q"]) == 0
    err = capsys.readouterr().err
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    n = summary["unreadable_tiles"]
    assert n >= 1 and summary["tiles"] >= 1 and len(summary["unreadable_boxes"]) == n
    assert f"warning: {n} tiles with damaged image data could not be read and were left out: the numbers cover " \
           "the rest" in err
    assert all(box[2] == box[3] == summary["patch_size_level0"] for box in summary["unreadable_boxes"])
    # at 8 µm/px the slide's only tissue tile is the damaged one: nothing to analyse is an error, not a result
    assert main(["analyze", str(zeroed), "-o", str(tmp_path / "b"), "--mpp", "8", "--device", "cpu", "-q"]) == 2
    err = capsys.readouterr().err
    assert "no tile of 'CMU-1-Small-Region-zeroed-tiles.svs' could be read (" in err and "damaged" in err and not (tmp_path / "b" / "summary.json").exists()
