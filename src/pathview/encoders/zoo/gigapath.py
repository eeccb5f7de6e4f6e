"""Prov-GigaPath tile encoder (Microsoft / Providence): DINOv2 ViT-g with 16 px patches."""

from __future__ import annotations

from ..registry import register
from ..spec import EncoderSpec

register(EncoderSpec(
    name="prov-gigapath", aliases=("gigapath",),
    title="Prov-GigaPath tile encoder (ViT-g/16)", family="timm", arch="vit_giant_patch14_dinov2",
    arch_kwargs={"img_size": 224, "in_chans": 3, "patch_size": 16, "embed_dim": 1536, "depth": 40, "num_heads": 24,
                 "init_values": 1e-5, "mlp_ratio": 5.33334},
    embed_dim=1536, pooling="cls", input_size=224, resize_to=256, interpolation="bicubic", mpp=0.5, params_m=1135,
    card="https://huggingface.co/prov-gigapath/prov-gigapath", licence="Apache-2.0, gated",
    repo="prov-gigapath/prov-gigapath", files=("pytorch_model.bin",),
    notes="the card's transform: resize to 256 (bicubic), centre crop 224",
))
