"""The demo's headless run: the analysis the viewer would show, written to a folder.

Besides metadata, overview, tissue grid and a rendered field of view, it runs the
anomaly analysis (artifact QC and morphological outliers) into ``OUT/analysis/``:
heatmap.png, findings.geojson (ranked regions) and the rest of the scan output folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from .wording import count


def run_headless_demo(slide_path: Path, out: Path) -> Iterator[str]:
    """Write metadata, overview, tissue grid, a 10x field of view and the anomaly analysis; yield progress lines."""
    from .render import render_view
    from .tiles import TileSource
    from .slide import detect_tissue, open_slide, tile_grid
    from .slide.overlay import grid_picture

    out.mkdir(parents=True, exist_ok=True)
    with open_slide(slide_path) as slide:
        (out / "info.json").write_text(json.dumps(slide.info.to_dict(), indent=2))
        slide.thumbnail(1024).save(out / "thumbnail.png")
        yield f"wrote {out / 'info.json'} and {out / 'thumbnail.png'}"
        mask = detect_tissue(slide)
        grid = tile_grid(slide, mpp=0.5, size=224, mask=mask)
        grid_picture(slide, grid, mask).save(out / "tiles.png")
        yield (f"tissue {mask.area_mm2(slide.require_mpp()):.2f} mm², {count(len(grid), 'tissue tile')} of 224 px at "
               f"0.5 µm/px -> {out / 'tiles.png'}")
        w, h = slide.dimensions
        view = render_view(TileSource(slide), center=(w * 0.3, h * 0.4), magnification=10, size=(1280, 800))
        Image.fromarray(view).save(out / "view-10x.png")
        yield f"rendered a 10x field of view -> {out / 'view-10x.png'}"
    yield from _analysis(slide_path, out / "analysis")


def _analysis(slide_path: Path, out: Path) -> Iterator[str]:
    from .analysis.analyze import analyze_slide

    summary = analyze_slide(slide_path, out, device="cpu")
    yield (f"analysed {count(summary['tiles'], 'tile')} (tissue, and pen ink beside it) in "
           f"{summary['timings']['total_s']:.1f} s: "
           f"{count(summary['regions'], 'region')} -> {out / 'heatmap.png'}, {out / 'findings.geojson'}")
    for r in summary["top_regions"][:5]:
        x, y = r["centroid"]
        yield f"  #{r['rank']} {r['title']} (score {r['score']:.2f}, {count(r['tiles'], 'tile')}) at {x:.0f},{y:.0f}"
