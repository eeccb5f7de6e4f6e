"""Build a large pyramidal test slide (default 50,000 x 40,000 px) from real tissue.

The tissue is CMU-1-Small-Region (../shared/data, CC0), mirror-tiled so edges join,
at 20x (0.5 µm/px) or 40x (0.25 µm/px, upsampled 2x). The file is an Aperio-layout
SVS with 256-px JPEG tiles and a 4x pyramid, like a scanner's. For benchmarks only.

    python benchmarks/make_large_slide.py --magnification 20 -o benchmarks/data/large-20x.svs
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pathview.slide import open_slide
from pathview.slide.writer import TILE, pyramid_shapes, write_svs

SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "slides" / "CMU-1-Small-Region.svs"


def mirror_index(n_out: int, n_src: int) -> np.ndarray:
    """Return source indices that tile 0..n_src-1 back and forth to length n_out."""
    i = np.arange(n_out) % (2 * n_src)
    return np.where(i < n_src, i, 2 * n_src - 1 - i)


def level_tiles(source: np.ndarray, height: int, width: int):
    """Yield the mirror-tiled image of ``source`` at (height, width) as 256-px tiles."""
    cols = mirror_index(width + (-width) % TILE, source.shape[1])
    for y in range(0, height, TILE):
        rows = mirror_index(y + TILE, source.shape[0])[y:y + TILE]
        strip = source[rows][:, cols]
        for x in range(0, width, TILE):
            yield strip[:, x:x + TILE]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--magnification", type=int, choices=(20, 40), default=20)
    parser.add_argument("--width", type=int, default=50_000)
    parser.add_argument("--height", type=int, default=40_000)
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    with open_slide(args.source) as slide:
        tissue = Image.fromarray(slide.read_region((0, 0), 0, slide.dimensions))
    if args.magnification == 40:
        tissue = tissue.resize((tissue.width * 2, tissue.height * 2), Image.Resampling.BICUBIC)
    mpp = 10.0 / args.magnification
    shapes = pyramid_shapes(args.width, args.height)
    sources = [np.asarray(tissue)]
    for h, w in shapes[1:]:
        scale = w / args.width
        sources.append(np.asarray(tissue.resize((max(1, round(tissue.width * scale)),
                                                 max(1, round(tissue.height * scale))), Image.Resampling.BOX)))
    h, w = shapes[-1]
    thumb = Image.fromarray(sources[-1][mirror_index(h, sources[-1].shape[0])][:, mirror_index(w, sources[-1].shape[1])])
    thumb.thumbnail((1024, 1024))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    write_svs(args.output, shapes, lambda i: level_tiles(sources[i], *shapes[i]), mpp=mpp,
              magnification=args.magnification, thumbnail=thumb, quality=80)
    print(f"wrote {args.output}: {args.width}x{args.height} at {mpp} µm/px, {len(shapes)} levels, "
          f"{args.output.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
