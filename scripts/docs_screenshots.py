"""Make the README's analysis and assistant screenshots: real windows, rendered offscreen.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/docs_screenshots.py [-o docs] \
        [--only analysis analysis-real assistant] [--work DIR]

- ``analysis.png``: the built-in demo slide analysed with the default encoder (heatmap overlay,
  Heatmap dock, ranked Regions, region #1 selected).
- ``analysis-real.png``: real tissue with injected artifacts: CMU-1-Small-Region mirrored into a
  2 x 2 mosaic with pen, blur, fold, bubble, debris, exposure and foreign tissue painted in, as
  ``benchmarks/anomaly_eval.py`` builds it (seed 0), analysed into the workspace the window reads.
- ``assistant.png``: CMU-1-Small-Region with a drawn Tumor rectangle selected and a question
  about it answered by the tiny random-weight Gemma 3 test model (tests/tiny_assistant_models.py):
  the answer streams for real, but its words are noise.

Slides, workspace, settings and the model go to a temporary folder (``--work`` keeps them), so the
user's own workspace and viewer settings are untouched. Takes about a minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
SLIDES = ROOT.parent / "shared" / "data" / "slides"
CMU = SLIDES / "CMU-1-Small-Region.svs"
WINDOW = (1400, 860)
SHOTS = ("analysis", "analysis-real", "assistant")


def settle(app, done: Callable[[], bool], timeout: float, what: str) -> None:
    """Run the event loop until ``done()``; fail loudly after ``timeout`` s (a half-drawn picture is no use)."""
    deadline = time.time() + timeout
    while not done():
        if time.time() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.02)
    app.processEvents()


def sharp(view) -> bool:
    return view.is_complete() and view.loader.idle()


def open_window(app, slide: Path, workspace: Path):
    from pathview.app.main_window import MainWindow

    window = MainWindow(cache_mb=256, workspace=workspace)
    window.resize(*WINDOW)
    window.show()
    view = window.open_path(str(slide))
    settle(app, lambda: view.width() > 0, 10, "the slide view")
    return window, view


def analysed(slide: Path, workspace: Path) -> None:
    """Analyse ``slide`` into the workspace folder the viewer reads (kept when already there)."""
    from pathview.analysis.analyze import analyze_slide
    from pathview.slide import open_slide
    from pathview.workspace import Workspace

    with open_slide(slide) as s:
        out = Workspace.at(workspace).analysis_dir(s.quickhash)
    if not (out / "summary.json").exists():
        print(f"analysing {slide.name} ...", flush=True)
        analyze_slide(slide, out, device="cpu")


def grab_analysis(app, slide: Path, workspace: Path, output: Path) -> None:
    """Grab the window on ``slide``'s analysis: the whole slide in view, every region outlined, the best selected."""
    window, view = open_window(app, slide, workspace)
    analysis = window.analysis
    settle(app, lambda: analysis.result is not None, 10, "the analysis to load")
    panel = analysis.regions_panel
    # The Findings list is empty here: give the height to the ranked regions. No model is installed, so the
    # Assistant dock is closed (it never gets shorter than ~310 px) and the Heatmap dock lists every score layer.
    window.resizeDocks([window.annotations.dock, analysis.regions_dock], [1, 4], Qt.Orientation.Vertical)
    window.assistant_dock.close()
    app.processEvents()  # lay the docks out before sizing them
    window.resizeDocks([window.overview_dock, analysis.heatmap_dock, window.info_dock], [150, 230, 350],
                       Qt.Orientation.Vertical)
    region = analysis.result.regions[0]
    view.zoom_to_fit()
    analysis.regions_layer.selected = region.id
    panel.select(region.id)
    settle(app, lambda: len(panel.thumbnails) == len(panel.regions) and sharp(view), 60, "thumbnails and tiles")
    save(app, window, output)


def shot_analysis(app, work: Path, output: Path) -> None:
    from pathview.slide.demo import demo_slide_path

    slide = demo_slide_path(work / "slides")
    analysed(slide, work / "workspace")
    grab_analysis(app, slide, work / "workspace", output)


def mosaic_slide(work: Path) -> Path:
    """Write the CMU mosaic with injected artifacts (seed 0) exactly as the anomaly benchmark does."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from anomaly_eval import build_case, read_level0

    path = work / "slides" / "cmu-mosaic-seed0.svs"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        cmu = read_level0(CMU)
        cmu = np.concatenate([np.concatenate([cmu, cmu[:, ::-1]], 1),
                              np.concatenate([cmu[::-1], cmu[::-1, ::-1]], 1)], 0)
        tcga = read_level0(SLIDES / "TCGA-CR-7395-01A-01-TS1.svs", mpp=0.5)
        build_case(cmu, tcga, 0, path)
    return path


def shot_real(app, work: Path, output: Path) -> None:
    slide = mosaic_slide(work)
    analysed(slide, work / "workspace")
    grab_analysis(app, slide, work / "workspace", output)


def shot_assistant(app, work: Path, output: Path) -> None:
    from shapely.geometry import box

    # A fresh workspace each run, so the slide has only the rectangle drawn below.
    window, view = open_window(app, CMU, Path(tempfile.mkdtemp(prefix="workspace-", dir=work)))
    panel = window.assistant
    # This slide is not analysed: its empty Regions dock gives way, and the answers get a wider column.
    window.analysis.regions_dock.close()
    window.assistant_dock.raise_()
    app.processEvents()  # lay the docks out before sizing them
    window.resizeDocks([window.annotations.dock, window.assistant_dock], [280, 440], Qt.Orientation.Horizontal)
    window.resizeDocks([window.overview_dock, window.assistant_dock], [150, 620], Qt.Orientation.Vertical)
    settle(app, lambda: panel.model_box.count() > 0, 10, "the model list")
    controller = window.annotations.controller
    controller.set_current_class("Tumor")
    ann = controller.create("rectangle", box(900, 1100, 1500, 1600))
    assert ann is not None and panel.annotation is not None, "the selected annotation is the assistant's region"
    view.center_on(1200, 1350)
    view.set_magnification(10)  # the region with its surroundings
    panel.max_new_tokens = 120
    for question in ("Describe the architecture of this region.", "Are there mitoses?"):
        panel.question_edit.setPlainText(question)
        if not panel.ask():
            raise SystemExit("the assistant did not start")
        settle(app, lambda: not panel.worker.busy, 300, "the streamed answer")
    settle(app, lambda: sharp(view), 30, "the slide tiles")
    save(app, window, output)


def save(app, window, output: Path) -> None:
    """Grab the window once its layout has caught up (answer heights, scroll bars), then close it."""
    pause = time.time() + 1
    settle(app, lambda: time.time() > pause, 2, "the layout")
    output.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(output))
    window.close()
    print(f"wrote {output}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output-dir", type=Path, default=ROOT / "docs")
    parser.add_argument("--only", nargs="+", choices=SHOTS, default=list(SHOTS))
    parser.add_argument("--work", type=Path, help="keep slides, workspace and model here (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pathview-docs-", ignore_cleanup_errors=True) as scratch:
        make(args.only, (args.work or Path(scratch)).resolve(), args.output_dir)


def make(shots: list[str], work: Path, output_dir: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    # Before Qt and pathview read them: settings, data folder and models of this run only.
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")
    os.environ["XDG_DATA_HOME"] = str(work / "data")
    os.environ["PATHVIEW_MODELS"] = str(tiny_gemma(work) if "assistant" in shots else work / "models")
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    app = QApplication.instance() or QApplication([])
    makers = {"analysis": shot_analysis, "analysis-real": shot_real, "assistant": shot_assistant}
    for name in shots:
        makers[name](app, work, output_dir / f"{name}.png")


def tiny_gemma(work: Path) -> Path:
    """Build the tiny random Gemma 3 test model once; return the models folder holding only it."""
    import transformers

    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_assistant_models import build_gemma3

    transformers.utils.logging.disable_progress_bar()
    models = work / "models"
    if not (models / "tiny-gemma3" / "config.json").exists():
        build_gemma3(models / "tiny-gemma3")
    return models


if __name__ == "__main__":
    main()
