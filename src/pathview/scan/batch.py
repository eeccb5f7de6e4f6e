"""Scan a cohort: find slides, keep the finished ones, analyse the rest, table and report the lot.

The coordinator never decodes pixels: it finds slides, identifies them (headers
only), decides per slide (finished with the same settings: keep its results, with
the ``ok`` row the run that made them wrote; the same slide by a second path:
``skipped``; locked by another run: come back later; otherwise lock, mark
unfinished, send to a worker), and records every outcome in ``scan.csv``,
``report.html`` and ``scan.log`` as it happens, so a run killed at any moment
leaves an accurate table and a rerun finishes the job. Workers (local processes or Ray actors) do the analysis.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .. import __version__
from ..analysis.analyze import unreadable_note
from ..errors import PathviewError
from .discover import ScanInputError, SlideSource, discover_slides, shard
from .events import (
    AnalysisConfig,
    SlideTask,
    TaskDone,
    TaskFailed,
    TaskRequeued,
    TaskStarted,
    TileProgress,
    WorkerBroken,
    WorkerReady,
)
from .identify import SlideIdentity, SlideRejected, identify
from .layout import complete_summary, reset_folder
from .locks import STALE_AFTER_S, LockManager
from .mpp_table import MppTable
from .report import REPORT_FILE, report_html
from .table import (
    TABLE_FILE,
    SlideRow,
    merge_rows,
    read_table,
    summary_time,
    summary_values,
    table_text,
    write_atomic,
)

LOG_FILE = "scan.log"
#: The note of a slide another run, running beside this one, finished first.
KEPT_FROM_ANOTHER_RUN = "done by another run (results kept)"
LOCK_FOLDER = ".locks"
_POLL_S = 0.2
_WAIT_POLL_S = 1.0

log = logging.getLogger("pathview.scan")


class ScanAborted(PathviewError):
    """The batch cannot go on (e.g. the encoder does not load); finished slides are kept."""


class Executor(Protocol):
    """Where slides are analysed: local worker processes or Ray actors."""

    def can_take(self, task: SlideTask) -> bool: ...
    def submit(self, task: SlideTask) -> None: ...
    def busy(self) -> bool: ...
    def pids(self) -> list[int]: ...
    def poll(self, timeout: float) -> list[object]: ...
    def close(self, graceful: bool = True) -> None: ...


@dataclass(frozen=True)
class ScanOptions:
    """Everything a scan needs besides the executor."""

    inputs: tuple[Path, ...]
    out: Path
    config: AnalysisConfig = AnalysisConfig()
    recursive: bool = False
    include: tuple[str, ...] = ()
    mpp_table: MppTable | None = None
    shard: tuple[int, int] | None = None
    stale_after: float = STALE_AFTER_S


@dataclass(frozen=True)
class ScanProgress:
    """What a progress display needs: slides done of total, tiles/s, the row just finished."""

    slides_done: int
    slides_total: int
    tiles_done: int
    tiles_per_s: float
    row: SlideRow | None = None
    message: str = ""


@dataclass
class ScanResult:
    out: Path
    rows: list[SlideRow] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def reused(self) -> int:
        """Slides whose results an earlier (or another) run made and this run kept."""
        return sum(1 for r in self.rows if r.reused)

    @property
    def failed(self) -> int:
        return self.count("failed")


def expected_settings(config: AnalysisConfig, ident: SlideIdentity) -> dict[str, object]:
    """Return the settings a slide's summary.json must record for its outputs to be reused."""
    from ..analysis.analyze import analysis_settings
    from ..encoders import get_spec

    return analysis_settings(get_spec(config.encoder).name, config.tile_mpp, config.tile_size, config.min_tissue,
                             ident.mpp, ident.mpp_source, reference_fingerprint(config.reference))


@functools.lru_cache(maxsize=4)
def reference_fingerprint(path: str | None) -> str | None:
    """Return the fingerprint the analysis records for a reference bank (None without one)."""
    if path is None:
        return None
    from ..analysis.reference import load_bank

    return load_bank(path).fingerprint


def list_slides(options: ScanOptions) -> list[SlideSource]:
    """Return the slides this run covers (its shard of everything found), raising when there are none."""
    slides = discover_slides(options.inputs, recursive=options.recursive, include=options.include,
                             exclude=[options.out])
    if options.shard is not None:
        slides = shard(slides, *options.shard)
    if not slides:
        where = ", ".join(str(p) for p in options.inputs)
        hint = "" if options.recursive else " (add --recursive to look in subfolders)"
        raise ScanInputError(f"no slides found in {where}{hint}")
    return slides


def run_scan(options: ScanOptions, executor_factory: Callable[[], Executor],
             on_progress: Callable[[ScanProgress], None] | None = None) -> ScanResult:
    """Scan the slides of ``options``; return every slide's row. See the module docstring."""
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    handler = _file_log(out / LOG_FILE)
    try:
        slides = list_slides(options)
        reference_fingerprint(options.config.reference)  # a bad bank is bad input: say so before any work
        log.info("scan of %d slides into %s by pid %d on %s (pathview %s, %s)", len(slides), out, os.getpid(),
                 socket.gethostname(), __version__, options.config)
        return _Scan(options, slides, on_progress).run(executor_factory)
    finally:
        log.removeHandler(handler)
        handler.close()


def _ok_row(path: str, ident: SlideIdentity, summary: dict[str, object], note: str = "",
            reused: bool = False) -> SlideRow:
    """Return the row of a slide with complete results: the same whether this run made them or kept them.

    Its numbers, timings and ``finished`` time all come from summary.json, so a rerun
    rewrites the first run's row unchanged but for ``note``.
    """
    notes = "; ".join(n for n in (note, unreadable_note(summary)) if n)  # damage is still true of kept outputs
    return SlideRow(path, "ok", output=ident.key, quickhash=ident.quickhash, note=notes,
                    values=summary_values(summary), finished=summary_time(summary), reused=reused)


def _remove_if_empty(folder: Path) -> None:
    """Drop the folder of a slide that failed before writing anything (older outputs stay)."""
    try:
        folder.rmdir()
    except OSError:
        pass


def _file_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s pid %(process)d %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


class _Scan:
    """One run's state: what is queued, in flight, waiting for another run, and done."""

    def __init__(self, options: ScanOptions, slides: list[SlideSource],
                 on_progress: Callable[[ScanProgress], None] | None) -> None:
        self.options = options
        self.out = options.out
        self.total = len(slides)
        self.sources: Iterator[SlideSource] = iter(slides)
        self.emit = on_progress or (lambda _p: None)
        self.result = ScanResult(self.out)
        self.unwritten: list[SlideRow] = []  # rows not yet in scan.csv (older ones may be newer there)
        self.locks = LockManager(self.out / LOCK_FOLDER, stale_after=options.stale_after)
        self.queue: deque[SlideTask] = deque()
        self.in_flight: dict[str, tuple[SlideTask, SlideIdentity]] = {}
        self.idents: dict[str, SlideIdentity] = {}
        self.waiting: list[SlideIdentity] = []
        self.tiles: dict[str, int] = {}
        self.executor: Executor | None = None
        self.t0 = time.perf_counter()

    # -- the loop -----------------------------------------------------------------------------
    def run(self, executor_factory: Callable[[], Executor]) -> ScanResult:
        self._progress("starting")
        executor = self.executor = executor_factory()
        self.locks.set_workers(executor.pids())
        graceful = False
        try:
            while True:
                self._fill(executor)
                if not executor.busy() and not self.queue:
                    if not self.waiting:
                        break
                    self._retry_waiting()
                    continue
                for event in executor.poll(_POLL_S):
                    self._handle(event)
            graceful = True
        except KeyboardInterrupt:
            log.warning("interrupted: %d slides in progress left unfinished", len(self.in_flight))
            raise
        except ScanAborted as exc:
            log.error("scan stopped: %s", exc)
            raise
        finally:
            executor.close(graceful=graceful)
            for task in [*self.queue, *(t for t, _i in self.in_flight.values())]:
                _remove_if_empty(Path(task.out_dir))
                # Its summary.json is gone: the table must not go on showing an earlier run's numbers.
                self.unwritten.append(SlideRow(task.path, "unfinished", output=task.key,
                                               quickhash=self.idents[task.key].quickhash,
                                               note="stopped before it finished: rerun the scan to finish it"))
            self._write_table()
            self.locks.close()
        log.info("done: %d ok (%d done earlier), %d skipped, %d failed in %.1f s", self.result.count("ok"),
                 self.result.reused, self.result.count("skipped"), self.result.failed, time.perf_counter() - self.t0)
        return self.result

    def _fill(self, executor: Executor) -> None:
        """Hand tasks to the executor while it has room, deciding about the next slides as needed."""
        while True:
            if not self.queue and not self._decide_next():
                return
            if not executor.can_take(self.queue[0]):
                return
            task = self.queue.popleft()
            self.in_flight[task.key] = (task, self.idents[task.key])
            executor.submit(task)

    def _decide_next(self) -> bool:
        """Decide about the next slide; return False when no slide is left to decide about."""
        for source in self.sources:
            found = identify(source, self.options.mpp_table)
            if isinstance(found, SlideRejected):
                self._record(SlideRow(str(source.path), "failed", found.message))
                continue
            if found.key in self.idents:  # the same slide twice (a copy, or listed twice)
                self._record(SlideRow(str(source.path), "skipped", output=found.key, quickhash=found.quickhash,
                                      note=f"same slide as {self.idents[found.key].source.path}"))
                continue
            self.idents[found.key] = found
            state = self._claim(found, "done by an earlier run (results kept)")
            if state == "locked":
                self.waiting.append(found)
            elif state == "queued":
                return True
        return False

    def _claim(self, ident: SlideIdentity, done_note: str) -> str:
        """Keep a finished slide (``done``), leave one another run holds (``locked``), or lock and queue it."""
        if self._keep_if_complete(ident, done_note):
            return "done"
        owner = self.locks.acquire(ident.key)
        if owner is not None:
            if ident not in self.waiting:
                log.info("%s: being scanned by %s; coming back to it later", ident.source.name, owner.describe())
            return "locked"
        if self._keep_if_complete(ident, KEPT_FROM_ANOTHER_RUN, release=True):
            return "done"
        reset_folder(self.out / ident.key)
        self.queue.append(SlideTask(ident.key, str(ident.source.path), str(self.out / ident.key), ident.slide_mpp))
        return "queued"

    def _keep_if_complete(self, ident: SlideIdentity, note: str, release: bool = False) -> bool:
        """Record a slide whose current results are there as ok, without analysing it; False when they are not."""
        summary, why = complete_summary(self.out / ident.key, ident.quickhash, self._settings(ident))
        if summary is None:
            if why and "no summary.json" not in why:
                log.info("%s: recomputing: %s", ident.source.name, why)
            return False
        if release:
            self.locks.release(ident.key)
        self._record(_ok_row(str(ident.source.path), ident, summary, note, reused=True))
        return True

    def _retry_waiting(self) -> None:
        """Wait for slides other runs hold; take over those whose run died (stale locks)."""
        time.sleep(_WAIT_POLL_S)
        self.waiting = [i for i in self.waiting if self._claim(i, KEPT_FROM_ANOTHER_RUN) == "locked"]

    # -- events -------------------------------------------------------------------------------
    def _handle(self, event: object) -> None:
        if isinstance(event, TileProgress):
            self.tiles[event.key] = event.done
            self._progress()
        elif isinstance(event, TaskStarted):
            if event.key in self.in_flight:
                log.info("%s: analysing (worker %d)", Path(self.in_flight[event.key][0].path).name, event.worker)
        elif isinstance(event, TaskDone):
            self._finished(event)
        elif isinstance(event, TaskFailed):
            task, ident = self.in_flight.pop(event.key)
            if event.detail:
                log.error("%s: %s", ident.source.name, event.detail)
            _remove_if_empty(Path(task.out_dir))
            self.locks.release(event.key)
            self._record(SlideRow(task.path, "failed", event.message, quickhash=ident.quickhash))
        elif isinstance(event, TaskRequeued):
            self.in_flight.pop(event.task.key, None)
            log.warning("%s: its worker died; running it again%s", Path(event.task.path).name,
                        " on its own" if event.task.solo else "")
            self.queue.appendleft(event.task)
        elif isinstance(event, WorkerReady):
            self.locks.set_workers(self.executor.pids())  # a restarted worker has a new pid
            log.info("worker %d ready: %s on %s (loaded in %.1f s, pid %d)", event.worker, event.encoder,
                     event.device, event.load_s, event.pid)
        elif isinstance(event, WorkerBroken):
            raise ScanAborted(event.message)

    def _finished(self, event: TaskDone) -> None:
        task, ident = self.in_flight.pop(event.key)
        summary, why = complete_summary(Path(task.out_dir), ident.quickhash, self._settings(ident))
        self.locks.release(event.key)
        if summary is None:
            self._record(SlideRow(task.path, "failed", f"the analysis finished but its outputs do not check out: {why}",
                                  output=ident.key, quickhash=ident.quickhash))
            return
        row = _ok_row(task.path, ident, summary)
        row.values.setdefault("seconds", round(event.seconds, 2))
        self._record(row)

    # -- records ------------------------------------------------------------------------------
    def _settings(self, ident: SlideIdentity) -> dict[str, object]:
        return expected_settings(self.options.config, ident)

    def _record(self, row: SlideRow) -> None:
        self.result.rows.append(row)
        self.unwritten.append(row)
        level = logging.ERROR if row.status == "failed" else logging.INFO
        log.log(level, "%s: %s%s%s", Path(row.path).name, row.status, f": {row.error}" if row.error else "",
                f" ({row.note})" if row.note else "")
        self._write_table()
        self._progress(row=row)

    def _write_table(self) -> None:
        """Merge this run's new rows into scan.csv and rewrite report.html (under a short lock).

        Only rows not written yet: one written before may since have been replaced by another run
        that scanned the slide again (a failure of this run then redone there).
        """
        self.locks.wait_acquire("scan-table")
        try:
            rows = merge_rows(read_table(self.out), self.unwritten)
            write_atomic(self.out / TABLE_FILE, table_text(rows))
            write_atomic(self.out / REPORT_FILE, report_html(rows, self.out))
            self.unwritten = []
        finally:
            self.locks.release("scan-table")

    def _progress(self, message: str = "", row: SlideRow | None = None) -> None:
        tiles = sum(self.tiles.values())
        rate = tiles / max(time.perf_counter() - self.t0, 1e-9)
        self.emit(ScanProgress(len(self.result.rows), self.total, tiles, rate, row, message))
