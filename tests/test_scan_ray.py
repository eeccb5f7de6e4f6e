"""The Ray path of `pathview scan` on a local Ray instance: slides run in actors, outcomes as locally."""

from __future__ import annotations

import csv

import ray
from conftest import BROKEN, CMU_SVS

from pathview.scan import AnalysisConfig, ScanOptions, run_scan
from pathview.scan.ray_exec import RayExecutor


def test_slides_run_on_ray_actors_with_the_same_outcomes(tmp_path):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        config = AnalysisConfig(device="cpu", tile_mpp=8.0, threads=1)  # the zeroed slide's one tile is damaged
        options = ScanOptions(inputs=(CMU_SVS, BROKEN / "CMU-1-Small-Region-zeroed-tiles.svs"), out=tmp_path,
                              config=config)
        result = run_scan(options, lambda: RayExecutor(config, address=None))
    finally:
        ray.shutdown()
    assert {r.status for r in result.rows} == {"ok", "failed"}
    with open(tmp_path / "scan.csv", newline="") as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    assert rows[CMU_SVS.name]["status"] == "ok" and int(rows[CMU_SVS.name]["tiles"]) > 0
    assert (tmp_path / rows[CMU_SVS.name]["output"] / "summary.json").exists()
    assert "could be read (1 tile tried): its image data is damaged" in rows["CMU-1-Small-Region-zeroed-tiles.svs"]["error"]
    assert "worker 0 ready: pathview-he on cpu" in (tmp_path / "scan.log").read_text()
