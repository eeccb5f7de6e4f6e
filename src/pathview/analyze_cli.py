"""Command-line commands of the anomaly analysis: registered on the main app by cli.py.

``pathview analyze SLIDE -o OUTDIR`` writes the scan output folder (tiles.h5,
findings.geojson, heatmap.png, thumbnail.png, summary.json); ``pathview reference build
SLIDES... -o BANK`` makes a bank of normal tissue to score against (one command with an
action word, as ``models check``, so the CLI's bare-slide shortcut still sees it).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import PathviewError
from .wording import count

Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
Encoder = Annotated[str, typer.Option("--encoder", help="Encoder name (see `pathview models`).")]
SlideMpp = Annotated[Optional[float], typer.Option("--slide-mpp",
                                                   help="Pixel size in µm for slides that record none.")]
TileMpp = Annotated[float, typer.Option("--mpp", "--tile-mpp", min=0.01, help="Tile resolution in µm/px (0.5 = 20x).")]
TileSize = Annotated[int, typer.Option("--size", "--tile-size", min=16, help="Tile side in pixels.")]

def register(app: typer.Typer) -> None:
    """Add `analyze` and `reference build` to ``app``."""
    app.command("analyze")(analyze)
    app.command("reference")(reference)


def analyze(
    slide: Annotated[Path, typer.Argument(help="Slide file or DICOM folder.")],
    output: Annotated[Path, typer.Option("-o", "--output",
                                         help="Output folder (created; its old results are replaced).")],
    encoder: Encoder = "pathview-he",
    reference: Annotated[Optional[Path], typer.Option("--reference", help="Reference bank of normal tissue.")] = None,
    device: Device = "auto",
    slide_mpp: SlideMpp = None,
    mpp: TileMpp = 0.5,
    size: TileSize = 224,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Find artifacts and morphological outliers; write heatmap, ranked regions (QuPath GeoJSON) and tiles.h5."""
    from .analysis.analyze import analyze_slide, unreadable_note

    with _Progress(quiet) as on_event:
        summary = analyze_slide(slide, output, encoder=encoder, device=device, slide_mpp=slide_mpp, tile_mpp=mpp,
                                tile_size=size, reference=reference, progress=on_event)
    typer.echo(f"{summary['slide_name']}: {count(summary['tiles'], 'tile')}, tissue {summary['tissue_mm2']:.2f} mm², "
               f"{count(summary['regions'], 'region')} in {summary['timings']['total_s']:.1f} s "
               f"({summary['tiles_per_s']:.0f} tiles/s on {summary['device']})")
    for r in summary["top_regions"][:10]:
        x, y = r["centroid"]
        typer.echo(f"  #{r['rank']:<3d} {r['title']:<24s} score {r['score']:.2f}  {count(r['tiles'], 'tile'):>9s}  "
                   f"{r['area_mm2']:.3f} mm²  at {x:.0f},{y:.0f}")
    if note := unreadable_note(summary):
        typer.echo(f"pathview: warning: {note} (places in summary.json 'unreadable_boxes')", err=True)
    typer.echo(f"wrote {output}/ (heatmap.png, findings.geojson, tiles.h5, summary.json)")


def reference(
    action: Annotated[str, typer.Argument(help="'build'.")],
    slides: Annotated[list[Path], typer.Argument(help="Slides of normal tissue.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Bank file to write (.h5).")],
    encoder: Encoder = "pathview-he",
    device: Device = "auto",
    slide_mpp: SlideMpp = None,
    mpp: TileMpp = 0.5,
    size: TileSize = 224,
) -> None:
    """`reference build SLIDES... -o BANK`: a bank of normal tissue for `analyze --reference`."""
    if action != "build":
        raise PathviewError("usage: pathview reference build SLIDES... -o BANK [--encoder NAME]")
    from .analysis.reference import build_bank, collect_clean_features
    from .analysis.runner import resolve_device
    from .encoders import load_encoder

    from .slide import open_slide

    for path in slides:  # every slide opens and has a pixel size, before minutes of encoding
        with open_slide(path, mpp=slide_mpp) as s:
            s.require_mpp()
    slides = list(dict.fromkeys(p.resolve() for p in slides))  # a slide named twice counts once
    if len(slides) == 1:
        typer.echo("pathview: warning: a bank of one slide takes that slide's stain and scanner for normal, so "
                   "other slides may read as outliers throughout; build it from several slides of normal tissue, "
                   "stained and scanned like those you will analyse", err=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(output.parent, os.W_OK):
        raise PathviewError(f"cannot write the bank into '{output.parent}': permission denied")
    dev = resolve_device(device)
    enc = load_encoder(encoder, device=dev)
    with tempfile.TemporaryDirectory(prefix="pathview-bank-") as work:
        feats = collect_clean_features(
            slides, enc, device=str(dev), slide_mpp=slide_mpp, tile_mpp=mpp, tile_size=size, workdir=work,
            on_slide=lambda i, s: typer.echo(f"[{i + 1}/{len(slides)}] {Path(s).name}", err=True))
    bank = build_bank(feats, enc.label, output, device=dev)
    typer.echo(f"wrote {output}: {len(bank.features)} tiles from {count(len(slides), 'slide')} "
               f"({bank.encoder})")


class _Progress:
    """A rich progress bar on stderr fed by analysis events, started by the first one (nothing when quiet)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.task = None

    def __enter__(self):
        return None if self.quiet else self.on_event

    def on_event(self, e) -> None:
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[note]}"), TimeRemainingColumn(), transient=True,
                                console=Console(stderr=True))
            self.bar.start()
            self.task = self.bar.add_task("starting", total=None, note="")
        if e.stage == "encode":
            self.bar.update(self.task, description="tiles", total=e.total, completed=e.done,
                            note=f"{e.tiles_per_s:.0f} tiles/s")
        elif e.stage == "tissue":
            self.bar.console.print(e.message)
        elif e.stage in ("score", "write"):
            self.bar.update(self.task, description=e.stage, note=e.message)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
