"""Analysis of encoded slides: the batched encoding pipeline and the feature store (tiles.h5)."""

from __future__ import annotations
