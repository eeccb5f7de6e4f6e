"""`pathview scan` end to end on real good and broken slides: statuses, resume, settings, kill -9, locks."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import BROKEN, CMU_DICOM, CMU_SVS, TCGA_NO_MPP

from pathview.cli import main
from pathview.scan import find_scan_output
from pathview.scan.locks import pid_alive

#: Coarse tiles keep every slide to a few seconds on two cores; one torch thread per worker.
FAST = ["--tile-mpp", "2", "--threads", "1", "-q"]
BROKEN_FILES = ["CMU-1-Small-Region-truncated.svs", "vectra-unsupported.qptiff", "dicom-no-imagetype.dcm"]
#: Opens, but one of its tiles at 2 µm/px cannot be decoded: analysed without it, with a note.
DAMAGED = "CMU-1-Small-Region-zeroed-tiles.svs"


def rows_by_name(out: Path) -> dict[str, dict[str, str]]:
    """scan.csv's rows by file name; two rows of one name (the same slide by two paths) would make it ambiguous."""
    with open(out / "scan.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    names = [r["name"] for r in rows]
    assert len(set(names)) == len(names), f"scan.csv has one name twice: {sorted(names)}"
    return {r["name"]: r for r in rows}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """A folder of good and broken slides (links to ../shared/data, nothing copied), one in a subfolder."""
    root = tmp_path_factory.mktemp("cohort")
    (root / "good").mkdir()
    (root / "good" / CMU_SVS.name).symlink_to(CMU_SVS)
    (root / "good" / CMU_DICOM.name).symlink_to(CMU_DICOM, target_is_directory=True)
    (root / TCGA_NO_MPP.name).symlink_to(TCGA_NO_MPP)
    (root / "broken").mkdir()
    for name in BROKEN_FILES:
        (root / "broken" / name).symlink_to(BROKEN / name)
    (root / "damaged").mkdir()
    (root / "damaged" / DAMAGED).symlink_to(BROKEN / DAMAGED)
    return root


@pytest.fixture(scope="module")
def scanned(cohort, tmp_path_factory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("scan")
    mpp = out.parent / "mpp.csv"
    mpp.write_text(f"slide,mpp\n{TCGA_NO_MPP.name},0.25\n")
    return out, main(["scan", str(cohort), "-o", str(out), "--recursive", "--mpp-csv", str(mpp), *FAST])


def test_good_slides_are_analysed_and_broken_ones_recorded_with_their_error(scanned):
    out, code = scanned
    assert code == 3  # finished, with failed slides
    rows = rows_by_name(out)
    assert set(rows) == {CMU_SVS.name, CMU_DICOM.name, TCGA_NO_MPP.name, DAMAGED, *BROKEN_FILES}
    for name in (CMU_SVS.name, CMU_DICOM.name, TCGA_NO_MPP.name):
        row = rows[name]
        assert row["status"] == "ok" and row["error"] == ""
        assert int(row["tiles"]) > 0 and float(row["tissue_mm2"]) > 0.1 and row["top_anomaly"] != ""
        folder = out / row["output"]
        assert {p.name for p in folder.iterdir()} >= {"tiles.h5", "findings.geojson", "heatmap.png",
                                                      "thumbnail.png", "summary.json"}
        assert find_scan_output(out, row["quickhash"]) == folder
    assert rows[TCGA_NO_MPP.name]["mpp"] == "0.25" and rows[TCGA_NO_MPP.name]["mpp_source"] == "user"
    assert rows[CMU_SVS.name]["output"] != rows[CMU_DICOM.name]["output"]
    errors = {n: rows[n]["error"] for n in BROKEN_FILES}
    assert all(rows[n]["status"] == "failed" for n in BROKEN_FILES)
    assert "truncated" in errors["CMU-1-Small-Region-truncated.svs"]
    assert "does not support" in errors["vectra-unsupported.qptiff"]
    assert "image flavor" in errors["dicom-no-imagetype.dcm"]
    damaged = rows[DAMAGED]  # one undecodable tile costs that tile, not the slide
    assert damaged["status"] == "ok" and int(damaged["unreadable_tiles"]) >= 1 and int(damaged["tiles"]) >= 1
    assert f"{damaged['unreadable_tiles']} tiles with damaged image data could not be read" in damaged["note"]
    page = (out / "report.html").read_text()
    assert page.count('<tr class="r-failed">') == 3 and page.count('<tr class="r-ok">') == 4
    assert page.count('<span class="badge warn">damaged tiles</span>') == 1 and "1 with damaged tiles" in page
    assert "image flavor" in page and f'src="{rows[CMU_SVS.name]["output"]}/heatmap.png"' in page
    log = (out / "scan.log").read_text()
    assert "worker 0 ready: pathview-he" in log and "dicom-no-imagetype.dcm: failed" in log
    assert not list((out / ".locks").iterdir())  # every lock given back


def _store(folder: Path) -> dict[str, np.ndarray]:
    """tiles.h5 datasets in raster order (rows are stored in reading order, which threads may vary)."""
    with h5py.File(folder / "tiles.h5", "r") as f:
        order = np.lexsort((f["coords"][:, 0], f["coords"][:, 1]))
        return {k: f[k][:] if k == "unreadable_coords" else f[k][:][order] for k in f.keys()}


def _wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    """Wait until the killed run's workers are gone: one may finish its last rename as it dies."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)


def test_a_run_killed_mid_slide_then_rerun_equals_an_uninterrupted_run(scanned, tmp_path):
    reference, _ = scanned  # the uninterrupted run, same settings (before any test changes them)
    args = [str(CMU_SVS), str(CMU_DICOM), *FAST]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "pathview", "scan", *args, "-o", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(killed.glob("*/.staged-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)  # mid-slide: a slide's features are being written
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    locks = list((killed / ".locks").glob("*.lock"))  # left by the dead run, naming its worker
    assert locks and all(json.loads(p.read_text())["workers"] for p in locks)
    _wait_gone([pid for p in locks for pid in json.loads(p.read_text())["workers"]])  # they die with the run
    folders = [p for p in killed.iterdir() if p.is_dir() and not p.name.startswith(".")]
    unfinished = [p.name for p in folders if not (p / "summary.json").exists()]
    assert unfinished  # the slide being encoded (the other may have finished, or not yet begun)

    assert main(["scan", *args, "-o", str(killed)]) == 0  # stale locks recovered, the batch finished
    rows, ref_rows = rows_by_name(killed), rows_by_name(reference)
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows.values())  # finished by either run
    assert {r["output"] for r in rows.values() if not r["note"]} >= set(unfinished)  # analysed by the rerun
    for name, row in rows.items():
        a, b = _store(killed / row["output"]), _store(reference / ref_rows[name]["output"])
        assert a.keys() == b.keys() and {"coords", "features", "anomaly", "qc_pen"} <= a.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        findings = [json.loads((o / r["output"] / "findings.geojson").read_text())
                    for o, r in ((killed, row), (reference, ref_rows[name]))]
        assert findings[0] == findings[1]
    assert not list(killed.glob("*/.*"))  # no temporary left behind


def test_sigterm_stops_a_scan_as_ctrl_c_does(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "pathview", "scan", str(CMU_SVS), str(CMU_DICOM), *FAST,
                             "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(out.glob("*/.staged-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)  # what SLURM sends a job it pre-empts
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "rerun the same command to resume" in err
    assert not list((out / ".locks").glob("*.lock"))  # given back, not left for the next run to age out
    assert "interrupted" in (out / "scan.log").read_text()
    rows = rows_by_name(out)  # the slide being analysed is not shown as done, nor with old numbers
    assert "unfinished" in {r["status"] for r in rows.values()} <= {"ok", "unfinished"}
    assert all(r["tiles"] == "" for r in rows.values() if r["status"] == "unfinished")
    assert '<span class="badge unfinished">' in (out / "report.html").read_text()


KEPT = "done by an earlier run (results kept)"


def test_a_rerun_keeps_finished_slides_as_ok_rows_and_retries_failed_ones(scanned, cohort, capsys):
    out, _ = scanned
    first = rows_by_name(out)
    before = {n: r for n, r in first.items() if r["status"] == "ok"}
    mtimes = {n: (out / r["output"] / "tiles.h5").stat().st_mtime_ns for n, r in before.items()}
    capsys.readouterr()
    code = main(["scan", str(cohort / "good"), str(cohort / "broken"), "-o", str(out), "--recursive", *FAST])
    assert code == 3  # the broken slides fail again
    assert "5 slides: 2 ok (2 done earlier), 3 failed; see" in capsys.readouterr().out
    rows = rows_by_name(out)
    assert len(rows) == len(first) and len(out.joinpath("scan.csv").read_text().splitlines()) == len(first) + 1
    for name in (CMU_SVS.name, CMU_DICOM.name):  # kept: the first run's row, timings and all, but for the note
        assert rows[name]["status"] == "ok" and rows[name]["note"] == KEPT
        assert {**rows[name], "note": ""} == first[name]
        assert int(rows[name]["tiles"]) > 0 and float(rows[name]["time_total_s"]) > 0
        assert float(rows[name]["tile_mpp_used"]) > 0 and rows[name]["regions"] != ""
    assert rows[TCGA_NO_MPP.name] == first[TCGA_NO_MPP.name] and rows[DAMAGED] == first[DAMAGED]  # not in this run
    assert all(rows[n]["status"] == "failed" and rows[n]["error"] == first[n]["error"] for n in BROKEN_FILES)
    page = (out / "report.html").read_text()
    assert page.count('<tr class="r-ok">') == 4 and page.count('<tr class="r-failed">') == 3
    assert page.count(f'<div class="note">{KEPT}</div>') == 2 and 'badge skipped' not in page

    code = main(["scan", str(cohort / "damaged"), "-o", str(out), *FAST])
    assert code == 0 and "1 slide: 1 ok (1 done earlier), 0 failed" in capsys.readouterr().out
    damaged = rows_by_name(out)[DAMAGED]
    assert damaged["status"] == "ok" and damaged["note"] == f"{KEPT}; {first[DAMAGED]['note']}"  # damage still said
    assert "with damaged image data could not be read" in damaged["note"]
    assert all((out / r["output"] / "tiles.h5").stat().st_mtime_ns == mtimes[n] for n, r in before.items())


def test_the_same_slide_by_a_second_path_is_skipped_not_counted_twice(tmp_path, capsys):
    for folder in ("a", "b"):  # a copy of one slide under the same name
        (tmp_path / folder).mkdir()
        (tmp_path / folder / CMU_SVS.name).symlink_to(CMU_SVS)
    out = tmp_path / "out"
    for run in range(2):
        assert main(["scan", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out), "--tile-mpp", "8",
                     "--threads", "1", "-q"]) == 0
        with open(out / "scan.csv", newline="") as f:
            rows = {Path(r["path"]).parent.name: r for r in csv.DictReader(f)}
        assert rows["a"]["status"] == "ok" and rows["a"]["note"] == ("" if run == 0 else KEPT)
        assert rows["b"]["status"] == "skipped"
        assert rows["b"]["note"] == f"same slide as {tmp_path / 'a' / CMU_SVS.name}"
        assert rows["b"]["output"] == rows["a"]["output"]
        earlier = " (1 done earlier)" if run else ""
        assert f"2 slides: 1 ok{earlier}, 1 skipped (same slide as another path), 0 failed" in capsys.readouterr().out
    assert '<span class="badge skipped">1 skipped</span>' in (out / "report.html").read_text()


def test_a_changed_setting_recomputes(cohort, scanned):
    out, _ = scanned
    old = rows_by_name(out)[CMU_SVS.name]
    # --mpp: the spelling of encode and analyze, accepted for --tile-mpp
    assert main(["scan", str(cohort / "good" / CMU_SVS.name), "-o", str(out), "--mpp", "4", "--threads", "1", "-q"]) == 0
    new = rows_by_name(out)[CMU_SVS.name]
    assert new["status"] == "ok" and int(new["tiles"]) < int(old["tiles"]) and new["note"] == ""  # made anew
    summary = json.loads((out / new["output"] / "summary.json").read_text())
    assert summary["settings"]["tile_mpp"] == 4.0
    assert "recomputing: settings changed (tile_mpp: 2.0 -> 4.0)" in (out / "scan.log").read_text()


def test_shards_of_one_cohort_fill_one_table(cohort, tmp_path):
    sizes = []
    for i in (1, 2):
        assert main(["scan", str(cohort / "broken"), "-o", str(tmp_path), "--shard", f"{i}/2", *FAST]) == 3
        sizes.append(len(rows_by_name(tmp_path)))
    assert 1 <= sizes[0] < sizes[1] == 3  # each shard adds its part of the sorted list
    rows = rows_by_name(tmp_path)
    assert set(rows) == set(BROKEN_FILES) and {r["status"] for r in rows.values()} == {"failed"}
    assert (tmp_path / "report.html").read_text().count('<tr class="r-failed">') == 3


def test_a_slide_locked_by_another_run_waits_and_a_dead_owner_is_taken_over(tmp_path):
    from pathview.scan import output_name
    from pathview.scan.locks import LockManager
    from pathview.slide import open_slide

    out = tmp_path / "out"
    with open_slide(CMU_SVS) as s:
        key = output_name(CMU_SVS, s.quickhash)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = out / ".locks" / f"{key}.lock"
        lock.parent.mkdir(parents=True)
        holder = LockManager(lock.parent)
        holder.owner = holder.owner.__class__(other.pid, holder.owner.host, "other-run", time.time())
        assert holder.acquire(key) is None  # as if the other process held it
        result: list[int] = []
        run = threading.Thread(target=lambda: result.append(
            main(["scan", str(CMU_SVS), str(CMU_DICOM), "-o", str(out), *FAST])))
        run.start()
        deadline = time.monotonic() + 60
        while "being scanned by pid" not in _read(out / "scan.log") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert not (out / key / "summary.json").exists()  # never written while the other run holds it
        other.kill()
        other.wait()
        run.join(60)
        holder.close()
    finally:
        other.kill()
    assert result == [0]
    assert {r["status"] for r in rows_by_name(out).values()} == {"ok"}
    assert (out / key / "summary.json").exists()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_a_worker_that_dies_mid_slide_costs_a_retry_not_the_batch(tmp_path):
    import re

    out = tmp_path / "out"
    result: list[int] = []
    run = threading.Thread(target=lambda: result.append(
        main(["scan", str(CMU_SVS), "-o", str(out), "--tile-mpp", "1", "--threads", "1", "-q"])))
    run.start()
    deadline = time.monotonic() + 60
    while not (pid := re.search(r"worker 0 ready.*pid (\d+)", _read(out / "scan.log"))) and time.monotonic() < deadline:
        time.sleep(0.01)
    while not list(out.glob("*/.staged-*")) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(int(pid.group(1)), signal.SIGKILL)  # as a segfault in a decoder would end it
    run.join(60)
    assert result == [0]
    assert rows_by_name(out)[CMU_SVS.name]["status"] == "ok"
    assert "its worker died; running it again on its own" in (out / "scan.log").read_text()
