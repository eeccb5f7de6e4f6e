"""Analysis of slides: the batched encoding pipeline, the feature store (tiles.h5), and anomaly highlighting.

``analyze.analyze_slide`` is the per-slide entry point (artifact QC, morphological
outliers, regions, heatmap, the scan output folder); the other modules are its parts.
"""

from __future__ import annotations
