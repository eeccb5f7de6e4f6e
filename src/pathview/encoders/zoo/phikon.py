"""Phikon (ViT-B/16, iBOT) and Phikon-v2 (ViT-L/16, DINOv2), Owkin: transformers models."""

from __future__ import annotations

from ..registry import register
from ..spec import EncoderSpec

register(EncoderSpec(
    name="phikon-v2", aliases=("phikon_v2",),
    title="Phikon-v2 (ViT-L/16 DINOv2, Owkin)", family="transformers", arch="Dinov2Model",
    arch_kwargs={"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "patch_size": 16,
                 "image_size": 224, "mlp_ratio": 4, "layerscale_value": 1e-5},
    embed_dim=1024, pooling="cls", input_size=224, mpp=0.5, params_m=303,
    card="https://huggingface.co/owkin/phikon-v2", licence="Owkin non-commercial (see card)",
    repo="owkin/phikon-v2", files=("model.safetensors",),
    notes="needs config.json beside the weights (as the snapshot ships it); CLS of last_hidden_state",
))

register(EncoderSpec(
    name="phikon", title="Phikon (ViT-B/16 iBOT, Owkin)", family="transformers", arch="ViTModel",
    arch_kwargs={"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
                 "patch_size": 16, "image_size": 224, "layer_norm_eps": 1e-12},
    embed_dim=768, pooling="cls", input_size=224, mpp=0.5, params_m=86,
    card="https://huggingface.co/owkin/phikon", licence="Owkin non-commercial (see card)",
    repo="owkin/phikon", files=("pytorch_model.bin", "model.safetensors"), ignore_prefixes=("pooler.",),
    notes="CLS of last_hidden_state; the pooler head is not used",
))
