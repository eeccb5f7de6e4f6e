"""CONCH v1's image tower, rebuilt without the ``conch`` package (MahmoodLab/CONCH, CoCa).

The tower is a timm ViT-B/16 at 448 px (``forward_features``, final norm kept), an
attentional pooler with one query for the contrastive embedding and one with 256
queries for captioning. The tile embedding follows the model card's advice for
feature extraction, ``encode_image(x, proj_contrast=False, normalize=False)``: the
contrastive pooler's single query after ``ln_contrast``, 512 values, no projection.
Module names mirror the original so the checkpoint's ``visual.*`` keys load as they
are; the text tower's keys are set aside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .spec import EncoderSpec
from .tile_encoder import TileEncoder
from .weights import check_state_dict, read_state_dict, select_keys

_TINY = {"width": 48, "layers": 2, "heads": 3, "embed_dim": 32, "embed_dim_caption": 40,
         "n_queries_caption": 4, "attn_pooler_heads": 4}


class AttentionalPooler(nn.Module):
    """Learned queries attending over the trunk's tokens (open_clip's CoCa pooler)."""

    def __init__(self, d_model: int, context_dim: int, n_head: int, n_queries: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(n_queries, d_model))
        self.attn = nn.MultiheadAttention(d_model, n_head, kdim=context_dim, vdim=context_dim)
        self.ln_q = nn.LayerNorm(d_model)
        self.ln_k = nn.LayerNorm(context_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln_k(x).permute(1, 0, 2)  # NLD -> LND
        q = self.ln_q(self.query).unsqueeze(1).expand(-1, x.shape[1], -1)
        out = self.attn(q, x, x, need_weights=False)[0]
        return out.permute(1, 0, 2)


class ConchVisual(nn.Module):
    """CONCH's ``VisualModel`` for inference: image (B, 3, 448, 448) → embedding (B, 512)."""

    def __init__(self, width: int = 768, layers: int = 12, heads: int = 12, image_size: int = 448,
                 patch_size: int = 16, embed_dim: int = 512, embed_dim_caption: int = 768,
                 n_queries_contrast: int = 1, n_queries_caption: int = 256, attn_pooler_heads: int = 8) -> None:
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        self.trunk = VisionTransformer(embed_dim=width, depth=layers, num_heads=heads, mlp_ratio=4,
                                       img_size=image_size, patch_size=patch_size, num_classes=0,
                                       dynamic_img_size=True)
        self.attn_pool_contrast = AttentionalPooler(embed_dim, width, attn_pooler_heads, n_queries_contrast)
        self.ln_contrast = nn.LayerNorm(embed_dim)
        self.proj_contrast = nn.Parameter(width ** -0.5 * torch.randn(embed_dim, embed_dim))
        self.attn_pool_caption = AttentionalPooler(embed_dim_caption, width, attn_pooler_heads, n_queries_caption)
        self.ln_caption = nn.LayerNorm(embed_dim_caption)
        self.out_dim = embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.trunk.forward_features(x)
        return self.ln_contrast(self.attn_pool_contrast(tokens)[:, 0])


def _kwargs(spec: EncoderSpec, tiny: bool) -> dict[str, Any]:
    kwargs = dict(spec.arch_kwargs)
    if tiny:
        kwargs.update(spec.tiny_kwargs or _TINY)
    return kwargs


def build_visual(spec: EncoderSpec, tiny: bool = False, device: str | torch.device = "meta") -> ConchVisual:
    with torch.device(device):
        return ConchVisual(**_kwargs(spec, tiny))


def wrap(spec: EncoderSpec, model: ConchVisual) -> TileEncoder:
    return TileEncoder(spec, model, model.out_dim)


def random_encoder(spec: EncoderSpec, tiny: bool, device: str | torch.device) -> TileEncoder:
    return wrap(spec, build_visual(spec, tiny, device))


def load_encoder(spec: EncoderSpec, path: Path, tiny: bool) -> TileEncoder:
    model = build_visual(spec, tiny, "meta")
    state = select_keys(read_state_dict(path, spec), spec)
    check_state_dict(model, state, spec, path)
    model.load_state_dict(state, strict=True, assign=True)
    return wrap(spec, model.float())


def save_weights(encoder: TileEncoder, folder: Path) -> Path:
    """Write a CoCa-style checkpoint: ``visual.*`` keys plus a stand-in for the text tower."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {f"visual.{k}": v.detach().contiguous().cpu() for k, v in encoder.backbone.state_dict().items()}
    state["logit_scale"] = torch.tensor(2.659)
    state["text.positional_embedding"] = torch.zeros(4, 8)
    torch.save(state, folder / "pytorch_model.bin")
    return folder / "pytorch_model.bin"
