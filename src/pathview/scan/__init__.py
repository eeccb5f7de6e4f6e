"""Headless batch scanning: many slides, one encoder load, resumable, fault-isolated, scale-out.

``run_scan`` drives it (see :mod:`pathview.scan.batch`); ``find_scan_output`` lets the
viewer find a slide's finished outputs again by its quickhash. No Qt, no torch here:
the analysis runs in worker processes (:mod:`pathview.scan.local`) or Ray actors
(:mod:`pathview.scan.ray_exec`).
"""

from __future__ import annotations

from .batch import ScanAborted, ScanOptions, ScanProgress, ScanResult, expected_settings, list_slides, run_scan
from .discover import ScanInputError, SlideSource, discover_slides, parse_shard, shard
from .events import AnalysisConfig
from .layout import find_scan_output, output_name
from .mpp_table import MppTable, MppTableError, read_mpp_table

__all__ = [
    "AnalysisConfig", "MppTable", "MppTableError", "ScanAborted", "ScanInputError", "ScanOptions", "ScanProgress",
    "ScanResult", "SlideSource", "discover_slides", "expected_settings", "find_scan_output", "list_slides",
    "output_name", "parse_shard", "read_mpp_table", "run_scan", "shard",
]
