"""UNI and UNI2-h (Mahmood Lab): DINOv2-trained ViT-L/16 and ViT-H/14 with 8 registers."""

from __future__ import annotations

from ..registry import register
from ..spec import EncoderSpec

register(EncoderSpec(
    name="uni", aliases=("uni_v1",),
    title="UNI (ViT-L/16, Mahmood Lab)", family="timm", arch="vit_large_patch16_224",
    arch_kwargs={"img_size": 224, "patch_size": 16, "init_values": 1e-5, "dynamic_img_size": True},
    embed_dim=1024, pooling="cls", input_size=224, mpp=0.5, params_m=303,
    card="https://huggingface.co/MahmoodLab/UNI", licence="CC-BY-NC-ND-4.0, gated",
    repo="MahmoodLab/UNI", files=("pytorch_model.bin",),
))

register(EncoderSpec(
    name="uni2-h", aliases=("uni_v2",),
    title="UNI2-h (ViT-H/14, 8 registers, Mahmood Lab)", family="timm", arch="vit_giant_patch14_224",
    arch_kwargs={"img_size": 224, "patch_size": 14, "depth": 24, "num_heads": 24, "init_values": 1e-5,
                 "embed_dim": 1536, "mlp_ratio": 2.66667 * 2, "no_embed_class": True, "reg_tokens": 8,
                 "mlp_layer": "swiglu_packed", "act_layer": "silu", "dynamic_img_size": True},
    embed_dim=1536, pooling="cls", input_size=224, mpp=0.5, params_m=681,
    card="https://huggingface.co/MahmoodLab/UNI2-h", licence="CC-BY-NC-ND-4.0, gated",
    repo="MahmoodLab/UNI2-h", files=("pytorch_model.bin",),
))
