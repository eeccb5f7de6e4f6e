"""CONCH v1 image tower (Mahmood Lab): ViT-B/16 at 448 px with an attentional pooler."""

from __future__ import annotations

from ..registry import register
from ..spec import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, EncoderSpec

register(EncoderSpec(
    name="conch", aliases=("conch_v1",),
    title="CONCH v1 image tower (ViT-B/16 @ 448, Mahmood Lab)", family="conch", arch="ConchVisual",
    arch_kwargs={"width": 768, "layers": 12, "heads": 12, "image_size": 448, "patch_size": 16, "embed_dim": 512,
                 "embed_dim_caption": 768, "n_queries_contrast": 1, "n_queries_caption": 256, "attn_pooler_heads": 8},
    embed_dim=512, pooling="pooled", input_size=448, interpolation="bicubic",
    mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD, mpp=0.5, params_m=90,
    card="https://huggingface.co/MahmoodLab/CONCH", licence="CC-BY-NC-ND-4.0, gated",
    repo="MahmoodLab/CONCH", files=("pytorch_model.bin",), key_prefix="visual.",
    ignore_prefixes=("text.", "text_decoder.", "logit_scale"),
    notes="embedding as the card advises for feature extraction: encode_image(proj_contrast=False, normalize=False)",
))
