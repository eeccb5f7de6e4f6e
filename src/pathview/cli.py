"""The `pathview` command line: the headless face of the core.

Bad input exits with status 2 and one line naming the file and the cause; a
traceback only with ``--debug``. ``pathview SLIDE`` (no command) opens the viewer.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from .errors import PathviewError

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Whole-slide image viewer and analysis for pathologists (pathview --version).")

_debug = False  # set by main() from --debug: errors then propagate with their traceback

SlideMpp = Annotated[Optional[float], typer.Option("--slide-mpp", help="Pixel size in µm for slides that record none.")]


def _echo_err(message: str) -> None:
    typer.echo(f"pathview: error: {message}", err=True)


def _save_image(image, output: Path) -> None:
    """Save a PIL image; a bad folder or file type is the user's input, not a bug."""
    try:
        image.save(output)
    except ValueError:
        raise PathviewError(f"cannot write '{output}': unknown image type (use .png, .jpg or .tif)") from None
    except OSError as exc:
        raise PathviewError(f"cannot write '{output}': {exc.strerror or exc}") from None


@app.command()
def info(
    slides: Annotated[list[Path], typer.Argument(help="Slide files or DICOM folders.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per slide, in a list).")] = False,
    properties: Annotated[bool, typer.Option("--properties", help="Include all vendor properties.")] = False,
    slide_mpp: SlideMpp = None,
) -> None:
    """Print slide metadata: size, levels, mpp, magnification, vendor, quickhash, associated images."""
    from .slide import open_slide

    records, failed = [], False
    for path in slides:
        try:
            with open_slide(path, mpp=slide_mpp) as slide:
                records.append(slide.info.to_dict(with_properties=properties))
        except PathviewError as exc:
            if _debug:
                raise
            failed = True
            _echo_err(str(exc))
            records.append({"path": str(path), "error": str(exc)})
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    else:
        for rec in records:
            if "error" not in rec:
                typer.echo(_format_info(rec))
    if failed:
        raise typer.Exit(2)


def _format_info(rec: dict) -> str:
    w, h = rec["dimensions"]
    mpp = f"{rec['mpp']:.4g} µm/px ({rec['mpp_source']})" if rec["mpp"] else "not recorded (use --slide-mpp)"
    obj = f"{rec['objective_power']:g}x ({rec['objective_source']})" if rec["objective_power"] else "unknown"
    levels = ", ".join(f"{lw}x{lh} (/{d:.4g})" for (lw, lh), d in zip(rec["level_dimensions"], rec["level_downsamples"]))
    lines = [
        rec["path"],
        f"  vendor         {rec['vendor']}",
        f"  dimensions     {w} x {h} px",
        f"  levels         {rec['level_count']}: {levels}",
        f"  mpp            {mpp}",
        f"  magnification  {obj}",
        f"  quickhash      {rec['quickhash']}",
        f"  associated     {', '.join(rec['associated_images']) or 'none'}",
        f"  icc profile    {'yes' if rec['has_icc_profile'] else 'no'}",
    ]
    if rec.get("properties"):
        lines += [f"  {k} = {v}" for k, v in sorted(rec["properties"].items())]
    return "\n".join(lines)


@app.command()
def thumbnail(
    slide: Annotated[Path, typer.Argument(help="Slide file or DICOM folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG or JPEG to write.")],
    size: Annotated[int, typer.Option("--size", min=16, max=16384, help="Longest side in pixels.")] = 1024,
) -> None:
    """Write an overview image of the whole slide."""
    from .slide import open_slide

    with open_slide(slide) as s:
        img = s.thumbnail(size)
    _save_image(img, output)
    typer.echo(f"wrote {output} ({img.size[0]}x{img.size[1]})")


@app.command()
def tiles(
    slide: Annotated[Path, typer.Argument(help="Slide file or DICOM folder.")],
    mpp: Annotated[float, typer.Option("--mpp", min=0.01, help="Tile resolution in µm/px (0.5 = 20x).")] = 0.5,
    size: Annotated[int, typer.Option("--size", min=8, help="Tile side in pixels.")] = 224,
    min_tissue: Annotated[float, typer.Option("--min-tissue", min=0.0, max=1.0, help="Smallest tissue fraction kept.")] = 0.1,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="PNG of the tissue mask and grid.")] = None,
    slide_mpp: SlideMpp = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Count the tissue tiles at a resolution and measure the tissue area."""
    from .slide import detect_tissue, open_slide, tile_grid

    with open_slide(slide, mpp=slide_mpp) as s:
        level0_mpp = s.require_mpp()
        if mpp < level0_mpp * 0.95:
            typer.echo(f"pathview: warning: the slide's pixels are {level0_mpp:.4g} µm; tiles at {mpp} µm/px are "
                       f"{level0_mpp / mpp:.1f}x upsampled (no detail is added)", err=True)
        mask = detect_tissue(s)
        grid = tile_grid(s, mpp=mpp, size=size, mask=mask, min_tissue=min_tissue)
        summary = {
            "slide": str(slide), "tiles": len(grid), "tile_size": size, "mpp": mpp,
            "patch_size_level0": grid.patch_size_level0, "level0_mpp": level0_mpp,
            "mpp_source": s.info.mpp_source, "tissue_mm2": round(mask.area_mm2(level0_mpp), 3),
        }
        if output is not None:
            from .slide.overlay import grid_picture

            _save_image(grid_picture(s, grid, mask), output)
            summary["picture"] = str(output)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo(f"{summary['tiles']} tiles of {size} px at {mpp} µm/px "
                   f"({grid.patch_size_level0} px at level 0); tissue {summary['tissue_mm2']} mm²")
        if output is not None:
            typer.echo(f"wrote {output}")


def _pair(text: str, sep: str, name: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.lower().split(sep))
        return a, b
    except ValueError:
        raise typer.BadParameter(f"expected two numbers like 1000{sep}2000, got {text!r}", param_hint=name) from None


@app.command()
def render(
    slide: Annotated[Path, typer.Argument(help="Slide file or DICOM folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG to write.")],
    center: Annotated[Optional[str], typer.Option("--center", help="Level-0 X,Y at the centre (default: slide centre).")] = None,
    magnification: Annotated[float, typer.Option("--magnification", "-m", min=0.01, help="Objective-style magnification (20 = 0.5 µm/px).")] = 10.0,
    size: Annotated[str, typer.Option("--size", help="Output WxH in pixels.")] = "1280x800",
    slide_mpp: SlideMpp = None,
) -> None:
    """Render a field of view to PNG with the viewer's own renderer."""
    from PIL import Image

    from .render import render_view
    from .slide import open_slide
    from .tiles import TileSource

    w, h = (int(v) for v in _pair(size, "x", "--size"))
    if not (0 < w <= 16384 and 0 < h <= 16384):
        raise typer.BadParameter("width and height must be between 1 and 16384", param_hint="--size")
    with open_slide(slide, mpp=slide_mpp) as s:
        cx, cy = _pair(center, ",", "--center") if center else (s.dimensions[0] / 2, s.dimensions[1] / 2)
        pixels = render_view(TileSource(s), (cx, cy), magnification, (w, h))
    _save_image(Image.fromarray(pixels), output)
    typer.echo(f"wrote {output} ({w}x{h} at {magnification:g}x around {cx:.0f},{cy:.0f})")


@app.command()
def demo(
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Folder for the demo slide and results.")] = None,
    viewer: Annotated[Optional[bool], typer.Option("--viewer/--no-viewer", help="Open the viewer (default: when a display is present).")] = None,
) -> None:
    """Write the built-in synthetic demo slide, then open it (or, with no display, write results)."""
    from .slide.demo import demo_slide_path

    folder = output
    typer.echo("preparing the demo slide (first run renders it: about 20 s)...")
    path = demo_slide_path(folder)
    typer.echo(f"demo slide: {path}")
    if viewer is None:
        viewer = _has_display()
    if viewer:
        return _open_viewer([path], analyse=True)
    results = (folder or path.parent) / "demo-results"
    from .demo_run import run_headless_demo

    for line in run_headless_demo(path, results):
        typer.echo(line)


@app.command()
def view(
    slides: Annotated[Optional[list[Path]], typer.Argument(help="Slides to open (two: side by side).")] = None,
    cache_mb: Annotated[int, typer.Option("--cache-mb", min=16, help="Decoded-tile memory cache per slide, in MB.")] = 512,
    scan_dir: Annotated[Optional[list[Path]], typer.Option(
        "--scan-dir", help="Folder of finished analyses (`pathview scan -o OUT`, or one slide's output folder) "
                           "to show with the slides; repeatable.")] = None,
    workspace: Annotated[Optional[Path], typer.Option(
        "--workspace", help="Folder for annotations and findings (default: the user one).")] = None,
) -> None:
    """Open the desktop viewer (also: `pathview SLIDE`)."""
    for folder in scan_dir or []:
        if not folder.is_dir():
            from .app.analysis_result import AnalysisLoadError

            raise AnalysisLoadError(folder, "there is no such folder")
    _open_viewer(slides or [], cache_mb, scan_dirs=scan_dir or [], workspace=workspace)


def _open_viewer(slides: list[Path], cache_mb: int = 512, scan_dirs: list[Path] | None = None,
                 analyse: bool = False, workspace: Path | None = None) -> None:
    try:
        from .app.main import run_viewer
    except ImportError as exc:
        raise PathviewError(f"the desktop viewer is not available here ({exc})") from None
    raise typer.Exit(run_viewer([str(s) for s in slides], cache_mb, [str(d) for d in scan_dirs or []], analyse,
                                str(workspace) if workspace else None))


def _has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _command_names() -> set[str]:
    return {c.name or c.callback.__name__ for c in app.registered_commands}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (2 for bad input, with one line on stderr)."""
    args = list(sys.argv[1:] if argv is None else argv)
    global _debug
    debug = _debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if args in (["--version"], ["-V"]):
        from . import __version__

        typer.echo(f"pathview {__version__}")
        return 0
    if not args:
        args = ["view"]
    elif args[0] not in _command_names() and not args[0].startswith("-"):
        args = ["view", *args]
    try:
        result = app(args=args, prog_name="pathview", standalone_mode=False)
        return int(result or 0)
    except PathviewError as exc:
        if debug:
            raise
        _echo_err(str(exc))
        return 2
    except (click.exceptions.Exit, typer.Exit) as exc:
        return exc.exit_code
    except (click.ClickException, typer.TyperException) as exc:  # typer >= 0.29 raises its own copy of click's
        exc.show()
        return 2
    except (click.Abort, typer.Abort):
        return 130
    except OSError as exc:  # the file system said no (an output folder not writable, a file in the way, ...)
        if debug:
            raise
        where = f"'{exc.filename}'" if exc.filename else "a file"
        _echo_err(f"cannot use {where}: {exc.strerror or exc}")
        return 2
    except Exception as exc:  # a bug: one line, the traceback with --debug
        if debug:
            raise
        _echo_err(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return 1


def _register_subsystems() -> None:
    from . import analyze_cli, assistant_cli, encode_cli, scan_cli

    encode_cli.register(app)
    analyze_cli.register(app)
    assistant_cli.register(app)
    scan_cli.register(app)
    from . import findings_cli

    findings_cli.register(app)


_register_subsystems()
