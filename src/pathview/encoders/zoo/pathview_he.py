"""The built-in, weight-free default encoder (see :mod:`pathview.encoders.builtin_he`)."""

from __future__ import annotations

from ..registry import register
from ..spec import EncoderSpec

register(EncoderSpec(
    name="pathview-he", title="pathview H&E statistics (built in, no weights)",
    family="builtin", arch="HEStatsEncoder", embed_dim=73,
    card="pathview: src/pathview/encoders/builtin_he.py", licence="Apache-2.0 (part of pathview)",
    input_size=224, mpp=0.5, cuda_dtype="float32", files=(), params_m=0.0,
    notes="colour deconvolution, multi-scale texture and nuclear-density statistics; fast on a CPU",
))
