"""H-optimus-0, H-optimus-1 (ViT-g/14, 4 registers) and H0-mini (ViT-B/14 distilled), Bioptimus."""

from __future__ import annotations

from ..registry import register
from ..spec import BIOPTIMUS_MEAN, BIOPTIMUS_STD, EncoderSpec

for _name, _title, _licence in (
    ("h-optimus-0", "H-optimus-0 (ViT-g/14, 4 registers, Bioptimus)", "Apache-2.0, gated"),
    ("h-optimus-1", "H-optimus-1 (ViT-g/14, 4 registers, Bioptimus)", "non-commercial, gated (see card)"),
):
    register(EncoderSpec(
        name=_name, aliases=(_name.replace("-", ""),), title=_title, family="timm",
        arch="vit_giant_patch14_reg4_dinov2",
        arch_kwargs={"img_size": 224, "init_values": 1e-5, "global_pool": "token", "dynamic_img_size": False},
        embed_dim=1536, pooling="cls", input_size=224, mean=BIOPTIMUS_MEAN, std=BIOPTIMUS_STD, mpp=0.5,
        params_m=1135, card=f"https://huggingface.co/bioptimus/{_title.split(' ')[0]}", licence=_licence,
        repo=f"bioptimus/{_title.split(' ')[0]}", files=("model.safetensors", "pytorch_model.bin"),
    ))

register(EncoderSpec(
    name="h0-mini", title="H0-mini (ViT-B/14, 4 registers, distilled from H-optimus-1)", family="timm",
    arch="vit_base_patch14_reg4_dinov2",
    arch_kwargs={"img_size": 224, "global_pool": "token", "mlp_ratio": 2.66667 * 2, "mlp_layer": "swiglu_packed",
                 "act_layer": "silu", "dynamic_img_size": True},
    embed_dim=768, pooling="cls", input_size=224, mean=BIOPTIMUS_MEAN, std=BIOPTIMUS_STD, mpp=0.5, params_m=86,
    card="https://huggingface.co/bioptimus/H0-mini", licence="CC-BY-NC-ND-4.0, gated",
    repo="bioptimus/H0-mini", files=("model.safetensors", "pytorch_model.bin"),
    notes="CLS token; the card also offers CLS ‖ mean of patch tokens (1536) for linear probing. "
          "mlp_ratio 5.33 (SwiGLU hidden 2048, 86M parameters) unless the folder's timm config.json says otherwise",
))
