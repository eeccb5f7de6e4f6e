"""``pathview scan``: the batch scanner's command, registered on the main app by cli.py.

The core (:mod:`pathview.scan`) reports progress through a callback; this module
turns it into a rich progress bar on stderr and chooses where slides run (local
worker processes, or a Ray cluster with ``--ray``).
"""

from __future__ import annotations

import signal
import threading

from pathlib import Path
from typing import Annotated, Optional

import typer

from .wording import count

#: Exit status when the batch finished but some slides failed (2 stays "bad input").
EXIT_SLIDES_FAILED = 3


def register(app: typer.Typer) -> None:
    """Add ``scan`` to ``app``."""
    app.command("scan")(scan)


def scan(
    inputs: Annotated[list[Path], typer.Argument(help="Slide files and folders of slides (a DICOM folder is one slide).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder: one subfolder per slide, scan.csv, report.html, scan.log.")],
    encoder: Annotated[str, typer.Option("--encoder", help="Encoder name (see `pathview models`).")] = "pathview-he",
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Model folder (or weights file) to load.")] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Look for slides in subfolders too.")] = False,
    include: Annotated[Optional[list[str]], typer.Option("--include", help="Only files whose name matches this glob (repeatable), e.g. '*.svs'.")] = None,
    mpp_csv: Annotated[Optional[Path], typer.Option("--mpp-csv", help="CSV with 'slide' and 'mpp' columns, for slides that record no pixel size.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes, each loading the encoder once (use one per GPU).")] = 1,
    shard_spec: Annotated[Optional[str], typer.Option("--shard", help="Scan only shard I of N (e.g. 3/10), for SLURM array jobs.")] = None,
    ray: Annotated[Optional[str], typer.Option("--ray", help="Run on a Ray cluster: 'auto' (a running cluster, else a local one) or its address; needs the ray extra.")] = None,
    tile_mpp: Annotated[Optional[float], typer.Option("--tile-mpp", "--mpp", min=0.01, help="Tile resolution in µm/px (default: the encoder's).")] = None,
    tile_size: Annotated[Optional[int], typer.Option("--tile-size", "--size", min=8, help="Tile side in px (default: the encoder's).")] = None,
    min_tissue: Annotated[float, typer.Option("--min-tissue", min=0.0, max=1.0, help="Smallest tissue fraction of a tile analysed.")] = 0.1,
    reference: Annotated[Optional[Path], typer.Option("--reference", help="Reference bank of normal tissue for anomaly scores.")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads per worker for the encoder (default: all).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Scan slides headless: QC, embeddings and anomaly maps per slide, a cohort table and report.

    Reruns keep the results of slides already done with the same settings (ok, noted as done earlier); a killed run resumes.

    Exit status: 0 no slide failed, 3 some slides failed (see scan.csv), 2 bad input, 130 interrupted, 143 stopped.
    """  # noqa: E501 - one line per paragraph: the help keeps line breaks as written
    from .encoders import get_spec
    from .scan import AnalysisConfig, ScanOptions, parse_shard, read_mpp_table, run_scan

    spec = get_spec(encoder)  # an unknown name fails here, before any slide is touched
    config = AnalysisConfig(encoder=spec.name, weights=str(weights) if weights else None, device=device,
                            tile_mpp=tile_mpp or spec.mpp, tile_size=tile_size or spec.resize_to or spec.input_size,
                            min_tissue=min_tissue, reference=str(reference.resolve()) if reference else None,
                            threads=threads)
    options = ScanOptions(inputs=tuple(inputs), out=output, config=config, recursive=recursive,
                          include=tuple(include or ()), mpp_table=read_mpp_table(mpp_csv) if mpp_csv else None,
                          shard=parse_shard(shard_spec) if shard_spec else None)
    if ray is not None:
        from .scan.ray_exec import RayExecutor

        def executor():
            return RayExecutor(config, ray, workers)
    else:
        from .scan.batch import LOG_FILE
        from .scan.local import LocalExecutor

        def executor():
            return LocalExecutor(config, workers, stderr_to=output / LOG_FILE)

    with _Bar(quiet) as on_progress, _terminate_as_interrupt() as signals:
        try:
            result = run_scan(options, executor, on_progress)
        except KeyboardInterrupt:
            typer.echo(f"interrupted; finished slides are kept in {output}: rerun the same command to resume", err=True)
            raise typer.Exit(128 + signals.received) from None
    typer.echo(f"{count(len(result.rows), 'slide')}: {_outcomes(result)}; "
               f"see {output / 'report.html'} and {output / 'scan.csv'}")
    if result.failed:
        raise typer.Exit(EXIT_SLIDES_FAILED)


def _outcomes(result) -> str:
    """Return e.g. '12 ok (5 done earlier), 1 failed': the parts in brackets and skipped only when there are any."""
    earlier = f" ({result.reused} done earlier)" if result.reused else ""
    skipped = result.count("skipped")
    duplicates = f", {skipped} skipped (same slide as another path)" if skipped else ""
    return f"{result.count('ok')} ok{earlier}{duplicates}, {result.failed} failed"


class _Bar:
    """A rich progress bar of slides (tiles/s, ETA) fed by scan progress events; failures printed above it.

    It appears with the first event, so bad input fails with its one line and no bar.
    """

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.task = None

    def __enter__(self):
        from rich.console import Console

        self.console = Console(stderr=True)
        return self.report if self.quiet else self.update

    def report(self, p) -> None:
        if p.row is not None and p.row.status == "failed":
            self.console.print(f"failed: {p.row.path}: {p.row.error}", markup=False, highlight=False, soft_wrap=True)

    def update(self, p) -> None:
        if self.bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TextColumn("slides"),
                                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=self.console)
            self.bar.start()
            self.task = self.bar.add_task("scan", total=p.slides_total, rate="")
        if p.row is not None and p.row.status == "failed":
            from rich.text import Text

            self.bar.console.print(Text.assemble(("failed", "red"), f" {p.row.path}: {p.row.error}"), highlight=False,
                                   soft_wrap=True)
        rate = f"{p.tiles_per_s:.0f} tiles/s" if p.tiles_done else ""
        self.bar.update(self.task, total=p.slides_total, completed=p.slides_done, rate=rate)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


class _terminate_as_interrupt:
    """While scanning, SIGTERM (what SLURM and kill send) stops the run as Ctrl-C does: workers stopped,
    scan.csv and the lock files put right, exit 128 + the signal number."""

    def __init__(self) -> None:
        self.received = signal.SIGINT

    def __enter__(self) -> _terminate_as_interrupt:
        self._before = None
        if threading.current_thread() is threading.main_thread():  # only there can Python take signals
            self._before = signal.signal(signal.SIGTERM, self._on_term)
        return self

    def _on_term(self, signum: int, _frame) -> None:
        self.received = signum
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        if self._before is not None:
            signal.signal(signal.SIGTERM, self._before)
