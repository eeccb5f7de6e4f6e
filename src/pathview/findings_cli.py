"""Command-line commands of the findings core: registered on the main app by cli.py.

``pathview import SLIDE FILE...`` adds QuPath GeoJSON / ASAP / ImageScope annotations to
the slide's store (one transaction: a bad file changes nothing), ``pathview export SLIDE
--format geojson|asap|imagescope|csv|pdf|html -o OUT`` writes them out, ``pathview annotations SLIDE``
lists them. The store lives in the workspace (``--workspace DIR``), never beside the slide.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .wording import count

WorkspaceOpt = Annotated[Optional[Path], typer.Option("--workspace", help="Workspace folder (default: the user one).")]
SlideMppOpt = Annotated[Optional[float], typer.Option("--slide-mpp", help="Pixel size in µm for slides that record none (default: the one declared in the viewer, if any).")]


def register(app: typer.Typer) -> None:
    """Add the findings commands (`import`, `export`, `annotations`) to ``app``."""
    app.command("import")(import_annotations)
    app.command("export")(export_annotations)
    app.command("annotations")(list_annotations)


def _warn(lines: list[str]) -> None:
    for line in lines:
        typer.echo(f"pathview: warning: {line}", err=True)


def import_annotations(
    slide: Annotated[Path, typer.Argument(help="Slide file or DICOM folder the annotations belong to.")],
    files: Annotated[list[Path], typer.Argument(help="QuPath GeoJSON, ASAP XML or ImageScope XML files.")],
    workspace: WorkspaceOpt = None,
    slide_mpp: SlideMppOpt = None,
) -> None:
    """Import annotation files into the slide's findings (all files or nothing)."""
    from .findings import FindingsStore
    from .findings.interchange import import_files
    from .pixel_sizes import open_declared
    from .workspace import Workspace

    ws = Workspace.at(workspace)
    with open_declared(slide, ws, slide_mpp) as s, FindingsStore.open(ws) as store:
        report = import_files(store, s.info, files)
        total = store.count(s.info.quickhash)
    _warn(report.warnings)
    for path, n in report.per_file:
        typer.echo(f"{path.name}: {count(n, 'annotation')}")
    typer.echo(f"imported {count(report.count, 'annotation')}; the slide now has {total:,} ({store.path})")


def export_annotations(
    slide: Annotated[Path, typer.Argument(help="Slide file or DICOM folder.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="geojson, asap, imagescope, csv, pdf or html.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    workspace: WorkspaceOpt = None,
    slide_mpp: SlideMppOpt = None,
    include_identifiers: Annotated[bool, typer.Option(
        "--include-identifiers", help="Report: show the slide's file name and path (may identify the patient).")] = False,
) -> None:
    """Export the slide's annotations (QuPath GeoJSON, ASAP XML, ImageScope XML, CSV) or a PDF/HTML report."""
    from .findings import FindingsStore
    from .findings.interchange import export_annotations as export
    from .pixel_sizes import open_declared
    from .workspace import Workspace

    ws = Workspace.at(workspace)
    with open_declared(slide, ws, slide_mpp) as s, FindingsStore.open(ws) as store:
        warnings = export(store, s, fmt.lower(), output, include_identifiers=include_identifiers)
        n = store.count(s.info.quickhash)
    _warn(warnings)
    typer.echo(f"wrote {output} ({count(n, 'annotation')}, {fmt.lower()})")


def list_annotations(
    slide: Annotated[Path, typer.Argument(help="Slide file or DICOM folder.")],
    workspace: WorkspaceOpt = None,
    slide_mpp: SlideMppOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per annotation, in a list).")] = False,
) -> None:
    """List the slide's annotations with class, measurements and note."""
    from .findings import FindingsStore, measure
    from .findings.measurements import format_measurement
    from .pixel_sizes import open_declared
    from .workspace import Workspace

    ws = Workspace.at(workspace)
    with open_declared(slide, ws, slide_mpp) as s, FindingsStore.open(ws) as store:
        anns = store.annotations(s.info.quickhash)
        mpp = s.info.mpp
    records = [{
        "id": a.id, "name": a.name, "class": a.class_name, "kind": a.kind, "source": a.source, "locked": a.locked,
        "note": a.note, "bounds": [round(v, 2) for v in a.bounds], "measurements": measure(a, mpp),
        "imported_measurements": a.measurements,
    } for a in anns]
    if as_json:
        typer.echo(json.dumps(records, indent=2, ensure_ascii=False, default=str))
        return
    if not records:
        typer.echo("no annotations on this slide")
    width = _unique_prefix_length([r["id"] for r in records])
    for r in records:
        x0, y0, x1, y1 = r["bounds"]
        title = f"{r['class'] or 'Unclassified'} {r['kind']}" + (f" '{r['name']}'" if r["name"] else "")
        meas = "; ".join(format_measurement(k, v) for k, v in r["measurements"].items())
        typer.echo(f"{r['id'][:width]}  {title}  at {x0:.0f},{y0:.0f}-{x1:.0f},{y1:.0f}  {meas}"
                   + (f"  note: {r['note']}" if r["note"] else ""))


def _unique_prefix_length(ids: list[str], shortest: int = 8) -> int:
    """Return the shortest id prefix (at least ``shortest``) that still tells every id apart."""
    n = shortest
    while n < max((len(i) for i in ids), default=0) and len({i[:n] for i in ids}) < len(set(ids)):
        n += 1
    return n
