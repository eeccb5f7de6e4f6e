"""Command-line commands of the assistant: registered on the main app by cli.py.

``pathview ask SLIDE --region X,Y,W,H "QUESTION"`` streams an answer from a local model
folder or a local OpenAI-compatible server; ``pathview serve-model MODEL`` shares one
loaded model over HTTP on localhost. torch and transformers load only when a command
needs a local model.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import PathviewError


def register(app: typer.Typer) -> None:
    """Add the assistant commands (`ask`, `serve-model`) to ``app``."""
    app.command("ask")(ask)
    app.command("serve-model")(serve_model)


def parse_region(text: str) -> tuple[int, int, int, int]:
    """Return the level-0 box of ``X,Y,W,H``."""
    try:
        x, y, w, h = (int(round(float(v))) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"expected X,Y,W,H in level-0 pixels like 1000,2000,800,600, got {text!r}",
                                 param_hint="--region") from None
    if w <= 0 or h <= 0:
        raise typer.BadParameter("the width and height must be positive", param_hint="--region")
    return x, y, w, h


def make_backend(model: str | None, server: str | None, allow_remote: bool, device: str = "auto"):
    """Return the backend the options name: a server when ``--server`` is given, else a local model."""
    from .assistant import create_backend

    if server:
        return create_backend("openai", url=server, model=model, allow_remote=allow_remote)
    return create_backend("transformers", model=model, device=device)


def assistant_model_records() -> list[dict[str, object]]:
    """Return the installed assistant models, then the suggested ones not installed (for `pathview models`)."""
    from .assistant.discovery import SUGGESTED_MODELS, find_models, install_folder

    installed = find_models()
    records: list[dict[str, object]] = [{"kind": "assistant", "installed": True, **m.to_dict()} for m in installed]
    have = {m.name.lower() for m in installed}
    records += [{"kind": "assistant", "installed": False, "name": name, "family": family, "source": repo,
                 "install_to": str(install_folder() / name)}
                for name, repo, family in SUGGESTED_MODELS if name.lower() not in have]
    return records


def echo_assistant_models(records: list[dict[str, object]]) -> None:
    """Print the assistant part of `pathview models`."""
    typer.echo("\nassistant models (vision-language, for `pathview ask` and the Assistant panel):")
    for r in records:
        typer.echo(f"{r['name']:24s} {r['family']}")
        if r["installed"]:
            typer.echo(f"{'':24s} installed: {r['path']} ({r['architecture']}, {r['size_gb']} GB)")
        else:
            typer.echo(f"{'':24s} not installed: put the {r['source']} snapshot folder in {r['install_to']}/")
    if not any(r["installed"] for r in records):
        typer.echo("no assistant model is installed; or run a local OpenAI-compatible server and use --server URL")


def _progress(event) -> None:
    typer.echo(f"[{event.fraction * 100:3.0f}%] {event.stage}", err=True)


def ask(
    slide: Annotated[Path, typer.Argument(help="Slide file or DICOM folder.")],
    question: Annotated[str, typer.Argument(help="What to ask about the region.")],
    region: Annotated[Optional[str], typer.Option("--region", help="Level-0 X,Y,W,H (default: the whole slide).")] = None,
    annotation: Annotated[Optional[str], typer.Option("--annotation", help="Ask about a stored annotation's region "
                                                      "(its id; class and note go with the question).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Model folder or installed model name "
                                                 "(with --server: the server's model name).")] = None,
    server: Annotated[Optional[str], typer.Option("--server", help="OpenAI-compatible server URL, e.g. "
                                                  "http://localhost:11434 (Ollama).")] = None,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a server that is not on this "
                                               "machine (it will see the slide's pixels).")] = False,
    scan: Annotated[Optional[Path], typer.Option("--scan", help="Scan output folder (`pathview scan -o`) with the "
                                                 "slide's anomaly and artifact scores (default: the workspace's).")] = None,
    save: Annotated[bool, typer.Option("--save", help="Keep the answer as a finding (exports and the report).")] = False,
    workspace: Annotated[Optional[Path], typer.Option("--workspace", help="Workspace folder (default: the user one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object when the answer is complete.")] = False,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Longest answer, in tokens.")] = 512,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N (local models).")] = "auto",
    slide_mpp: Annotated[Optional[float], typer.Option("--slide-mpp", help="Pixel size in µm for slides that record none.")] = None,
) -> None:
    """Ask the assistant about a region; the answer streams to stdout (AI-generated, not a diagnosis)."""
    from .assistant import ChatSession
    from .assistant.context import clip_box
    from .assistant.scores import find_tiles_h5
    from .findings import FindingsStore
    from .pixel_sizes import open_declared
    from .workspace import Workspace, default_root

    if region and annotation:
        raise typer.BadParameter("give --region or --annotation, not both", param_hint="--annotation")
    box = parse_region(region) if region else None
    backend = make_backend(model, server, allow_remote, device)
    ws = Workspace(Path(workspace) if workspace else default_root())
    with ExitStack() as stack:
        s = stack.enter_context(open_declared(slide, ws, slide_mpp))
        store = stack.enter_context(FindingsStore.open(ws)) if (save or annotation) else None
        context_of = None
        if annotation:
            from .assistant.findings_link import annotation_context

            box, context_of = annotation_context(store, s.quickhash, annotation)
        box = clip_box(box or (0, 0, *s.dimensions), s.dimensions)  # a wrong region fails before a slow load
        tiles_h5 = find_tiles_h5(scan if scan is not None else ws.root, s.quickhash)
        backend.load(None if as_json else _progress)
        session = ChatSession(backend, s, tiles_h5=tiles_h5)
        turn = session.ask(question, box, context_of)
        stop = threading.Event()
        try:
            for piece in session.answer(turn, stop, max_tokens):
                if not as_json:
                    sys.stdout.write(piece)
                    sys.stdout.flush()
        except KeyboardInterrupt:
            stop.set()
        if save:
            from .assistant.findings_link import save_answer

            save_answer(store, s.quickhash, turn)
    if as_json:
        typer.echo(json.dumps(turn.to_dict() | {"slide": str(slide)}, indent=2, ensure_ascii=False))
        return
    typer.echo("")
    x, y, w, h = turn.box
    typer.echo(f"-- {turn.notice} Model {turn.model}; region x={x} y={y} {w}x{h}"
               + (" (stopped)" if turn.state == "stopped" else "")
               + (f"; saved as a finding under annotation {turn.saved_to}" if turn.saved_to else ""), err=True)


def serve_model(
    model: Annotated[Optional[str], typer.Argument(help="Model folder or installed model name (default: the first installed).")] = None,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 8000,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    events: Annotated[bool, typer.Option("--events", hidden=True, help="Report progress and the address as JSON "
                                         "lines on stdout; stop when stdin closes (run by the viewer).")] = False,
) -> None:
    """Serve a local model as an OpenAI-compatible chat server on localhost (for `ask --server` and viewers)."""
    from .assistant import create_backend
    from .assistant.server import ModelServer

    def emit(record: dict) -> None:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()

    backend = create_backend("transformers", model=model, device=device)
    backend.load((lambda e: emit({"stage": e.stage, "fraction": e.fraction})) if events else _progress)
    try:
        server = ModelServer(backend, port)
    except OSError as exc:
        raise PathviewError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    if events:
        emit({"url": server.url, "model": backend.model_name, "image_budget": backend.image_budget})
        # The viewer holds our stdin: when it exits (even killed), stdin closes and so do we.
        threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    else:
        typer.echo(f"serving {backend.model_name} at {server.url}/v1 (only this machine can connect; Ctrl-C stops)",
                   err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    if events:
        # The viewer closed our stdin: leave at once. A normal interpreter exit would tear torch down
        # under request threads that may still be inside it, which now and then aborts (SIGABRT).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
