"""Kaiko.ai "Towards large-scale training of pathology foundation models": ViT-S/16, B/16, L/14.

Weights as timm snapshots (the 1aurent ports listed by the card, timm keys); an
original DINOv2-format L/14 checkpoint is converted on load.
"""

from __future__ import annotations

from ..registry import register
from ..spec import HALF, EncoderSpec

_CARD = "https://github.com/kaiko-ai/towards_large_pathology_fms"

for _name, _title, _arch, _kwargs, _dim, _params in (
    ("kaiko-vits16", "ViT-S/16", "vit_small_patch16_224", {"img_size": 224}, 384, 22),
    ("kaiko-vitb16", "ViT-B/16", "vit_base_patch16_224", {"img_size": 224}, 768, 86),
    ("kaiko-vitl14", "ViT-L/14, 4 registers", "vit_large_patch14_reg4_dinov2", {"img_size": 518}, 1024, 304),
):
    register(EncoderSpec(
        name=_name, title=f"Kaiko {_title} (kaiko.ai)", family="timm",
        arch=_arch, arch_kwargs={**_kwargs, "dynamic_img_size": True}, embed_dim=_dim, pooling="cls",
        input_size=224, mean=HALF, std=HALF, mpp=0.5, params_m=_params, card=_CARD,
        licence="see card", repo=f"1aurent/{_arch}.kaiko_ai_towards_large_pathology_fms",
        files=("model.safetensors",),
    ))
