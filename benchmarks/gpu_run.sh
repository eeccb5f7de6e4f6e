#!/usr/bin/env bash
# The issue #5 GPU measure as one prepared run on the lent device machine (no network there).
#
# The device tool copies the working tree; carry the two git-excluded folders with it:
#   .whl/      wheels the device's Python lacks: openslide-python, openslide-bin, platformdirs,
#              imagecodecs, shapely (for its Python version; `pip download --only-binary=:all:
#              --python-version 3.12 --no-deps -d .whl ...` on this machine fetches them)
#   .devdata/  CMU-1-Small-Region.svs (a copy of ../shared/data/slides/, which is not carried)
# e.g. run(command="bash benchmarks/gpu_run.sh", carry=[".whl", ".devdata"], timeout_s=540).
#
# Steps, each writing its figures as it goes (a run cut short still returns them):
#   1. readers alone (threads vs processes), then UNI and H-optimus-0: model-only, and end to
#      end with reader processes and with reader threads           -> $OUT/encode.json
#   2. UNI again with torch.compile: model-only and end to end      -> $OUT/encode-compile.json
# GPU utilisation is sampled all along (nvidia-smi dmon)            -> $OUT/dmon.txt
# Set SKIP_COMPILE=1 to leave step 2 out, ENCODERS / READERS / WORKERS / E2E_SECONDS to change step 1.
set -euo pipefail
SITE=/tmp/pathview-site
python3 -m pip install --quiet --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl
export PYTHONPATH="$SITE:$PWD/src" PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
nproc | tee -a "$OUT/gpu.txt"
nvidia-smi dmon -s u -d 1 > "$OUT/dmon.txt" 2>&1 &
DMON=$!
trap 'kill $DMON 2>/dev/null || true' EXIT
SLIDE=/tmp/large-20x.svs
[ -f "$SLIDE" ] || python3 benchmarks/make_large_slide.py --magnification 20 --source .devdata/CMU-1-Small-Region.svs -o "$SLIDE"
COMMON=(--slide "$SLIDE" --device cuda --batch-size 256 --workers "${WORKERS:-12}" --seconds 10
        --e2e-seconds "${E2E_SECONDS:-12}" --cpu-tiles 0)
python3 benchmarks/encode.py "${COMMON[@]}" --encoders "${ENCODERS:-uni,h-optimus-0}" --readers "${READERS:-processes,threads}" \
    --reader-tiles 8000 --json "$OUT/encode.json" 2>&1 | tee "$OUT/encode.log"
if [ -z "${SKIP_COMPILE:-}" ]; then
    python3 benchmarks/encode.py "${COMMON[@]}" --encoders uni --readers processes --reader-tiles 0 --compile \
        --json "$OUT/encode-compile.json" 2>&1 | tee "$OUT/encode-compile.log"
fi
