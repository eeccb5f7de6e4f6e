"""benchmarks/encode.py runs end to end on a CPU (tiny model, small slide): the GPU run uses the same code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import CMU_SVS

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "encode.py"


def test_encode_benchmark_smoke(tmp_path):
    out = tmp_path / "bench.json"
    res = subprocess.run(
        [sys.executable, str(BENCH), "--slide", str(CMU_SVS), "--device", "cpu", "--encoders", "uni", "--tiny",
         "--seconds", "0.5", "--max-tiles", "24", "--cpu-tiles", "24", "--batch-size", "8", "--json", str(out)],
        capture_output=True, text=True, timeout=180, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    row = data["gpu"][0]
    assert row["encoder"] == "uni" and row["tiny"] and row["end_to_end"]["tiles"] == 24
    assert row["model_only"]["tiles_per_s"] > 0 and row["ratio"] > 0
    assert data["cpu"]["tiles"] == 24 and data["cpu"]["ratio"] > 0
    assert "model-only" in res.stdout and "naive loop" in res.stdout
