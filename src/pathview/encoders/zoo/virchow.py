"""Virchow2 (Paige): ViT-H/14 with 4 registers; embedding = CLS ‖ mean of patch tokens."""

from __future__ import annotations

from ..registry import register
from ..spec import EncoderSpec

register(EncoderSpec(
    name="virchow2", title="Virchow2 (ViT-H/14, 4 registers, Paige)", family="timm", arch="vit_huge_patch14_224",
    arch_kwargs={"img_size": 224, "init_values": 1e-5, "mlp_ratio": 5.3375, "global_pool": "", "reg_tokens": 4,
                 "mlp_layer": "swiglu_packed", "act_layer": "silu", "dynamic_img_size": True},
    embed_dim=2560, pooling="cls+mean", input_size=224, interpolation="bicubic", mpp=0.5, params_m=631,
    card="https://huggingface.co/paige-ai/Virchow2", licence="CC-BY-NC-ND-4.0, gated",
    repo="paige-ai/Virchow2", files=("model.safetensors", "pytorch_model.bin"),
    notes="the card's embedding: class token concatenated with the mean of the patch tokens (registers skipped)",
))
