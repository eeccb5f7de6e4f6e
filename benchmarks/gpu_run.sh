#!/usr/bin/env bash
# The issue #5 GPU measure as one prepared run on the lent device machine (no network there).
#
# The device tool copies the working tree; carry the two git-excluded folders with it:
#   .whl/      wheels the device's Python lacks: openslide-python, openslide-bin, platformdirs,
#              imagecodecs, shapely (for its Python version; `pip download --only-binary=:all:
#              --python-version 3.12 --no-deps -d .whl ...` on this machine fetches them)
#   .devdata/  CMU-1-Small-Region.svs (a copy of ../shared/data/slides/, which is not carried)
# e.g. run(command="bash benchmarks/gpu_run.sh", carry=[".whl", ".devdata"], timeout_s=540).
# Results go to $OUT/encode.json (and the table to stdout).
set -euo pipefail
SITE=/tmp/pathview-site
python -m pip install --quiet --no-deps --target "$SITE" .whl/*.whl
export PYTHONPATH="$SITE:$PWD/src"
OUT=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
SLIDE=/tmp/large-20x.svs
[ -f "$SLIDE" ] || python benchmarks/make_large_slide.py --magnification 20 --source .devdata/CMU-1-Small-Region.svs -o "$SLIDE"
python benchmarks/encode.py --slide "$SLIDE" --device cuda --encoders "${ENCODERS:-uni,h-optimus-0}" \
    --batch-size 256 --workers "${WORKERS:-14}" --seconds 15 --max-tiles 20000 --cpu-tiles 0 \
    --reader-tiles 8000 --readers "${READERS:-auto}" ${EXTRA:-} --json "$OUT/encode.json"
