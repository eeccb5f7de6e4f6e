"""The scanner's parts that need no encoder: discovery, shards, the mpp table, locks, the table and report."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
from conftest import BROKEN, CMU_DICOM, CMU_SVS, SLIDES, TCGA_NO_MPP

from pathview.scan import (
    MppTableError,
    ScanInputError,
    discover_slides,
    find_scan_output,
    output_name,
    parse_shard,
    read_mpp_table,
    shard,
)
from pathview.scan.discover import ShardSpecError
from pathview.scan.layout import complete_summary
from pathview.scan.locks import LockManager, read_owner
from pathview.scan.report import report_html
from pathview.scan.table import SlideRow, merge_rows, summary_time, table_text
from pathview.workspace import Workspace


def test_discovery_groups_dicom_series_and_skips_what_is_not_a_slide():
    found = [s.path for s in discover_slides([SLIDES], recursive=True)]
    assert CMU_DICOM in found  # four .dcm files of one series: one slide, named by its folder
    assert not any(p.parent == CMU_DICOM for p in found)
    codecs = SLIDES / "bone-marrow-dicom-codecs"
    assert [p for p in found if p.parent == codecs] == sorted(codecs.glob("*.dcm"))  # three one-file slides
    assert BROKEN / "vectra-unsupported.qptiff" in found  # listed, so the scan can say why it fails
    assert not any(p.suffix in (".dat", ".ini") for p in found)  # the MIRAX data folder is not slides
    assert found == sorted(found) and len(found) == len(set(found))
    top = [s.path for s in discover_slides([SLIDES])]
    assert CMU_SVS in top and not any(BROKEN in p.parents for p in top)
    only = [s.path for s in discover_slides([SLIDES], recursive=True, include=["*.svs"])]
    assert only and all(p.suffix == ".svs" for p in only)
    assert [s.path for s in discover_slides([TCGA_NO_MPP, SLIDES], include=["*.svs"])].count(TCGA_NO_MPP) == 1


def test_discovery_never_enters_the_output_folder_and_names_a_missing_input(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.svs").symlink_to(CMU_SVS)
    out = tmp_path / "in" / "out"
    out.mkdir()
    (out / "b.svs").symlink_to(CMU_SVS)
    assert [s.name for s in discover_slides([tmp_path / "in"], recursive=True, exclude=[out])] == ["a.svs"]
    with pytest.raises(ScanInputError, match="'nowhere' does not exist"):
        discover_slides(["nowhere"])


def test_shards_split_the_sorted_list_disjointly_and_completely():
    slides = discover_slides([SLIDES], recursive=True)
    parts = [shard(slides, i, 3) for i in (1, 2, 3)]
    assert sorted(s for p in parts for s in p) == slides
    assert all(len(p) >= len(slides) // 3 for p in parts)
    assert shard(list(reversed(slides)), 2, 3) == parts[1]  # same split whatever order the disk lists
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "3", "a/b"):
        with pytest.raises(ShardSpecError, match="--shard"):
            parse_shard(bad)


def test_mpp_table_matches_name_stem_or_path_and_names_bad_lines(tmp_path):
    good = tmp_path / "mpp.csv"
    good.write_text("Slide,MPP\nTCGA-CR-7395-01A-01-TS1,0.2525\nsub/other.svs,0.5\n")
    table = read_mpp_table(good)
    assert table.lookup(TCGA_NO_MPP) == 0.2525
    assert table.lookup(tmp_path / "sub" / "other.svs") == 0.5 and table.lookup(CMU_SVS) is None
    bad = tmp_path / "bad.csv"
    bad.write_text("slide,mpp\na.svs,0.5\nb.svs,fast\n")
    with pytest.raises(MppTableError, match="line 3: mpp 'fast' is not a number"):
        read_mpp_table(bad)
    bad.write_text("file_name,resolution\na.svs,0.5\n")
    with pytest.raises(MppTableError, match="'slide' and an 'mpp' column"):
        read_mpp_table(bad)
    with pytest.raises(MppTableError, match="No such file"):
        read_mpp_table(tmp_path / "none.csv")


def test_output_names_keep_same_named_slides_apart():
    a, b = output_name(CMU_SVS, "ab" * 32), output_name(CMU_SVS, "cd" * 32)
    assert a != b and a.startswith("CMU-1-Small-Region-")
    assert output_name(CMU_DICOM, "ef" * 32) == "CMU-1-Small-Region-dicom-" + "ef" * 6


def test_a_lock_is_exclusive_and_released(tmp_path):
    one, two = LockManager(tmp_path), LockManager(tmp_path)
    try:
        assert one.acquire("slide") is None
        owner = two.acquire("slide")
        assert owner is not None and owner.pid == os.getpid() and owner.host == socket.gethostname()
        data = json.loads((tmp_path / "slide.lock").read_text())
        assert {"pid", "host", "run", "since"} <= set(data)
        one.release("slide")
        assert two.acquire("slide") is None
        one.release("slide")  # not its lock any more: left alone
        assert read_owner(tmp_path / "slide.lock").run == two.owner.run
    finally:
        one.close()
        two.close()
    assert not (tmp_path / "slide.lock").exists()


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_stale_locks_are_taken_over(tmp_path):
    pid = _dead_pid()
    host = socket.gethostname()
    (tmp_path / "dead.lock").write_text(json.dumps({"pid": pid, "host": host, "run": "x", "since": time.time()}))
    (tmp_path / "old.lock").write_text(json.dumps({"pid": 1, "host": "node-7", "run": "y", "since": 0}))
    os.utime(tmp_path / "old.lock", (time.time() - 3600, time.time() - 3600))
    (tmp_path / "live.lock").write_text(json.dumps({"pid": 1, "host": "node-7", "run": "z", "since": 0}))
    locks = LockManager(tmp_path, stale_after=600)
    try:
        assert locks.acquire("dead") is None  # its owner died on this host
        assert locks.acquire("old") is None  # no heartbeat for an hour from another node
        assert locks.acquire("live").host == "node-7"  # recent, on another node: kept
        assert not list(tmp_path.glob("*.break"))
    finally:
        locks.close()


def test_a_dead_owner_whose_worker_still_runs_keeps_its_lock(tmp_path):
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        owner = LockManager(tmp_path)
        owner.set_workers([worker.pid])
        assert owner.acquire("slide") is None
        owner._stop.set()  # the coordinator is gone: no heartbeat, and its pid is a dead one
        data = json.loads((tmp_path / "slide.lock").read_text())
        assert data["workers"] == [worker.pid]
        data["pid"] = _dead_pid()
        (tmp_path / "slide.lock").write_text(json.dumps(data))
        other = LockManager(tmp_path)
        assert other.acquire("slide").workers == (worker.pid,)  # its worker may still be writing
        worker.kill()
        worker.wait()
        assert other.acquire("slide") is None
        other.close()
    finally:
        worker.kill()


def test_table_merges_runs_and_report_shows_errors(tmp_path):
    first = [SlideRow("/s/a.svs", "ok", values={"tiles": 10, "artifact_pen": 0.1}),
             SlideRow("/s/b.svs", "failed", "cannot open 'b.svs': file is truncated")]
    second = [SlideRow("/s/b.svs", "ok", values={"tiles": 3}), SlideRow("/s/c.svs", "skipped")]
    rows = merge_rows([{k: str(v) for k, v in r.items()} for r in merge_rows([], first)], second)
    assert [(r["path"], r["status"]) for r in rows] == [("/s/a.svs", "ok"), ("/s/b.svs", "ok"), ("/s/c.svs", "skipped")]
    header = table_text(rows).splitlines()[0].split(",")
    assert header[:4] == ["path", "name", "status", "error"] and "artifact_pen" in header
    page = report_html(merge_rows([], first + [SlideRow("/s/<x>.svs", "failed", "bad & <worse>")]), tmp_path)
    assert page.count('<tr class="r-failed">') == 2 and "bad &amp; &lt;worse&gt;" in page
    assert page.index("b.svs") < page.index("a.svs")  # failures first
    assert "addEventListener('click'" in page and "<th>tissue mm²</th>" in page


def test_report_shows_kept_results_as_ok_with_their_note_and_counts_only_statuses_present(tmp_path):
    kept = SlideRow("/s/a.svs", "ok", note="done by an earlier run (results kept)", values={"tiles": 10}, reused=True)
    page = report_html(merge_rows([], [kept, SlideRow("/s/b.svs", "failed", "truncated")]), tmp_path)
    assert page.count('<tr class="r-ok">') == 1
    assert '<div class="note">done by an earlier run (results kept)</div>' in page
    assert '<span class="badge ok">1 ok</span>' in page and '<span class="badge failed">1 failed</span>' in page
    assert "badge skipped" not in page and "badge unfinished" not in page
    assert "reused" not in table_text(merge_rows([], [kept])).splitlines()[0]  # the note says it, not a column


def test_a_kept_row_is_dated_by_when_its_results_were_made():
    made = summary_time({"created": "2024-05-06T07:08:09+00:00"})
    assert made == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc).timestamp()
    assert abs(summary_time({"created": "yesterday"}) - time.time()) < 5 and abs(summary_time({}) - time.time()) < 5


def test_a_slide_another_run_redid_is_not_set_back_in_the_table(tmp_path):
    from pathview.scan.batch import ScanOptions, _Scan
    from pathview.scan.table import read_table

    first, second = (_Scan(ScanOptions(inputs=(), out=tmp_path), [], None) for _ in range(2))  # two runs, one -o
    try:
        first._record(SlideRow("/s/y.svs", "failed", "out of memory"))
        second._record(SlideRow("/s/y.svs", "ok", output="y-0123456789ab"))  # the later run redoes it
        first._record(SlideRow("/s/z.svs", "ok", output="z-0123456789ab"))  # the first run goes on
        assert {r["path"]: r["status"] for r in read_table(tmp_path)} == {"/s/y.svs": "ok", "/s/z.svs": "ok"}
    finally:
        first.locks.close()
        second.locks.close()


def test_find_scan_output_ignores_unfinished_and_other_slides(tmp_path):
    qh = "12" * 32
    done = tmp_path / output_name(CMU_SVS, qh)
    done.mkdir()
    (done / "summary.json").write_text(json.dumps({"slide_quickhash": qh, "settings": {}}))
    unfinished = tmp_path / "other" / output_name(CMU_SVS, qh)
    unfinished.mkdir(parents=True)
    assert find_scan_output(tmp_path, qh) == done
    assert find_scan_output([tmp_path / "other"], qh) is None
    assert find_scan_output(tmp_path, "34" * 32) is None
    workspace = tmp_path / "ws"
    (workspace / "analysis" / qh).mkdir(parents=True)
    (workspace / "analysis" / qh / "summary.json").write_text(json.dumps({"slide_quickhash": qh}))
    assert find_scan_output([tmp_path / "other", workspace], qh) == workspace / "analysis" / qh
    assert find_scan_output(Workspace(workspace), qh) == workspace / "analysis" / qh
    summary, why = complete_summary(done, qh, {"encoder": "pathview-he"})
    assert summary is None and "settings changed" in why
