"""Command-line commands of the encoders: registered on the main app by cli.py.

``pathview models`` lists the registry (installed or not, where the files go);
``pathview models check NAME`` loads one and embeds a tile; ``pathview encode SLIDE -o
OUTDIR`` writes ``OUTDIR/tiles.h5``. torch, timm and transformers are imported inside
the commands only, so other commands start fast.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import PathviewError
from .wording import count

Weights = Annotated[Optional[Path], typer.Option("--weights", help="Model folder (or weights file) to load.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]


def register(app: typer.Typer) -> None:
    """Add the encoder commands (`models`, `encode`) to ``app``."""
    app.command("models")(models)
    app.command("encode")(encode)


def models(
    action: Annotated[Optional[str], typer.Argument(help="'check' to load an encoder and embed one tile.")] = None,
    name: Annotated[Optional[str], typer.Argument(help="Encoder to check.")] = None,
    weights: Weights = None,
    device: Device = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    random_weights: Annotated[bool, typer.Option("--random-weights", hidden=True,
                                                 help="Check the architecture with random weights.")] = False,
) -> None:
    """List the tile encoders and assistant models (installed or not, and where their files go); `models check NAME` tries an encoder."""
    if action is None:
        return _list_models(as_json)
    if action != "check" or not name:
        raise PathviewError("usage: pathview models [check NAME] (e.g. pathview models check uni)")
    _check_model(name, weights, device, random_weights, as_json)


def _list_models(as_json: bool) -> None:
    from .encoders import list_specs
    from .encoders.weights import default_folder, locate, models_roots

    records = []
    for spec in list_specs():
        found = locate(spec) if spec.needs_weights else None
        records.append({
            "name": spec.name, "aliases": list(spec.aliases), "title": spec.title,
            "installed": (found is not None) or not spec.needs_weights,
            "weights": str(found) if found else None, "family": spec.family, "arch": spec.arch,
            "embed_dim": spec.embed_dim, "embedding": spec.pooling, "input_size": spec.input_size, "mpp": spec.mpp,
            "params_m": spec.params_m, "licence": spec.licence, "card": spec.card,
            "expected_files": list(spec.files), "install_to": str(default_folder(spec)) if spec.needs_weights else None,
        })
    from .assistant_cli import assistant_model_records, echo_assistant_models

    assistant = assistant_model_records()
    if as_json:
        typer.echo(json.dumps(records + assistant, indent=2))
        return
    for r in records:
        if not r["weights"] and r["installed"]:
            state = "built in"
        elif r["installed"]:
            state = f"installed: {r['weights']}"
        else:
            state = f"not installed: put {' or '.join(r['expected_files'])} in {r['install_to']}/"
        also = f" (also: {', '.join(r['aliases'])})" if r["aliases"] else ""
        typer.echo(f"{r['name']:15s} {r['embed_dim']:5d}-d  {r['input_size']} px @ {r['mpp']} µm/px  "
                   f"{r['params_m']:6.0f}M  {r['title']}{also}")
        typer.echo(f"{'':15s} {state}")
        typer.echo(f"{'':15s} {r['card']} ({r['licence']})")
    typer.echo("\nencoder weights are looked for, in this order, in a folder named as above (or as the model's "
               "Hugging Face repo, e.g. UNI) under:")
    for i, root in enumerate(models_roots(), 1):
        typer.echo(f"  {i}. {root}")
    typer.echo(f"($PATHVIEW_MODELS adds folders before these, separated by '{os.pathsep}'; "
               "--weights PATH names one folder)")
    echo_assistant_models(assistant)


def _sample_tile(size: int):
    """Return one synthetic H&E tile (size, size, 3) with tissue in it."""
    import numpy as np

    from .slide.demo import render_demo_tissue

    img = render_demo_tissue(max(512, 2 * size), max(512, 2 * size), seed=3)
    best, tile = -1.0, img[:size, :size]
    for y in range(0, img.shape[0] - size + 1, size // 2):
        for x in range(0, img.shape[1] - size + 1, size // 2):
            cand = img[y:y + size, x:x + size]
            stained = float((cand.astype(np.int16).sum(-1) < 600).mean())
            if stained > best:
                best, tile = stained, cand
    return np.ascontiguousarray(tile)


def _check_model(name: str, weights: Path | None, device: str, random_weights: bool, as_json: bool) -> None:
    import numpy as np

    from .analysis.runner import embed_tiles, resolve_device
    from .encoders import load_encoder

    dev = resolve_device(device)
    t0 = time.perf_counter()
    enc = load_encoder(name, weights, device=dev, random_weights=random_weights)
    load_s = time.perf_counter() - t0
    tile = _sample_tile(enc.spec.resize_to or enc.spec.input_size)
    t1 = time.perf_counter()
    feats = embed_tiles(enc, tile[None], dev)[0]
    run_s = time.perf_counter() - t1
    ok = bool(np.isfinite(feats).all()) and feats.shape == (enc.embed_dim,)
    params = sum(p.numel() for p in enc.module.parameters()) / 1e6
    rec = {"name": enc.name, "weights": str(enc.weights) if enc.weights else None, "device": str(dev),
           "params_m": round(params, 1), "embed_dim": enc.embed_dim, "load_s": round(load_s, 2),
           "tile_s": round(run_s, 2), "finite": ok, "norm": float(np.linalg.norm(feats))}
    if as_json:
        typer.echo(json.dumps(rec, indent=2))
    else:
        source = rec["weights"] or ("random weights" if random_weights else "built in")
        typer.echo(f"{enc.name}: {params:.1f}M parameters from {source}, loaded in {load_s:.1f} s")
        typer.echo(f"one {tile.shape[0]} px tile -> {enc.embed_dim} values in {run_s:.2f} s on {dev}; "
                   f"{'all finite' if ok else 'NOT FINITE'}, norm {rec['norm']:.3g}")
    if not ok:
        raise PathviewError(f"encoder '{enc.name}' produced non-finite or mis-shaped features")


def encode(
    slide: Annotated[Path, typer.Argument(help="Slide file or DICOM folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder (tiles.h5 is written there).")],
    encoder: Annotated[str, typer.Option("--encoder", help="Encoder name (see `pathview models`).")] = "pathview-he",
    weights: Weights = None,
    device: Device = "auto",
    mpp: Annotated[Optional[float], typer.Option("--mpp", "--tile-mpp", min=0.01, help="Tile resolution in µm/px (default: the encoder's).")] = None,
    size: Annotated[Optional[int], typer.Option("--size", "--tile-size", min=8, help="Tile side in px (default: the encoder's).")] = None,
    min_tissue: Annotated[float, typer.Option("--min-tissue", min=0.0, max=1.0, help="Smallest tissue fraction kept.")] = 0.1,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Tiles per batch (halved on GPU out-of-memory).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Tile readers (default: 12 on a GPU, 4 on a CPU; at most one per core).")] = None,
    readers: Annotated[str, typer.Option("--readers", help="auto, threads or processes (auto: processes on a GPU for large slides).")] = "auto",
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the encoder (pays off on long GPU runs).")] = False,
    slide_mpp: Annotated[Optional[float], typer.Option("--slide-mpp", help="Pixel size in µm for slides that record none.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Encode a slide's tissue tiles with a tile encoder into OUTPUT/tiles.h5."""
    from .analysis.encode import READER_KINDS, EncodeCancelled, default_workers, encode_slide, use_reader_processes
    from .analysis.runner import resolve_device
    from .encoders import get_spec, load_encoder
    from .slide import detect_tissue, open_slide, tile_grid

    if readers not in READER_KINDS:
        raise typer.BadParameter(f"'{readers}' is not one of {', '.join(READER_KINDS)}", param_hint="--readers")
    spec = get_spec(encoder)
    dev = resolve_device(device)
    if output.exists() and not output.is_dir() and output.suffix != ".h5":
        raise PathviewError(f"'{output}' is a file: -o names the folder that tiles.h5 goes into")
    made_folder = not output.exists()
    with open_slide(slide, mpp=slide_mpp) as s:
        level0_mpp = s.require_mpp()
        tile_mpp = mpp or spec.mpp
        if tile_mpp < level0_mpp:  # as the analysis does: finer tiles would be the slide's pixels enlarged
            typer.echo(f"pathview: warning: the slide is scanned at {level0_mpp:.4g} µm/px, coarser than the {tile_mpp:g} "
                       f"µm/px asked; tiles are made at {level0_mpp:.4g} µm/px (one slide pixel per tile pixel)",
                       err=True)
            tile_mpp = level0_mpp
        tile_px = size or spec.resize_to or spec.input_size
        grid = tile_grid(s, mpp=tile_mpp, size=tile_px, mask=detect_tissue(s), min_tissue=min_tissue)
        enc = load_encoder(encoder, weights, device=dev)
        if not quiet:
            n = workers or default_workers(dev)
            kind = "processes" if use_reader_processes(readers, dev, len(grid), n) else "threads"
            typer.echo(f"{count(len(grid), 'tile')} of {tile_px} px at {tile_mpp} µm/px; {enc.label} on {dev}, "
                       f"{n} reader {kind}", err=True)
        bar = _progress(len(grid), quiet)
        try:
            with bar as on_progress:
                result = encode_slide(s, grid, enc, output, device=dev, batch_size=batch_size, workers=workers,
                                      readers=readers, compile=compile, progress=on_progress)
        except KeyboardInterrupt:  # Ctrl-C: the partial file is already gone; say so in one line, exit 130
            typer.echo(f"pathview: interrupted: {EncodeCancelled(bar.done, len(grid))}", err=True)
            _remove_if_empty(output, made_folder)
            raise
        except PathviewError:
            _remove_if_empty(output, made_folder)
            raise
    if len(result.unreadable):
        n = len(result.unreadable)
        typer.echo(f"pathview: warning: {count(n, 'tile')} with damaged image data could not be read and "
                   f"{'was' if n == 1 else 'were'} left out of tiles.h5 (dataset unreadable_coords says where)", err=True)
    typer.echo(f"wrote {result.path}: {count(result.tiles, 'tile')} x {result.feature_dim} features ({result.encoder}) "
               f"in {result.seconds:.1f} s, {result.tiles_per_s:.0f} tiles/s on {result.device}")


def _remove_if_empty(folder: Path, made_here: bool) -> None:
    """Take back an output folder this run made when it stopped before writing anything into it."""
    if made_here and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


class _progress:
    """A rich progress bar fed by encode events (nothing when quiet)."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet = total, quiet
        self.bar = None
        self.done = 0

    def __enter__(self):
        if self.quiet:
            def count(e) -> None:
                self.done = e.done

            return count
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("encoding"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=True,
                            console=Console(stderr=True))
        self.bar.start()
        task = self.bar.add_task("encode", total=self.total, rate="")

        def on_event(e) -> None:
            self.done = e.done
            if e.kind == "oom":
                self.bar.console.print(f"[yellow]{e.message}")
            self.bar.update(task, completed=e.done, rate=f"{e.tiles_per_s:.0f} tiles/s")

        return on_event

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
