"""One module from uint8 tiles to embeddings: preprocessing, backbone and pooling together.

Preprocessing lives inside the module so it runs on the device that runs the model
(no CPU work per tile beyond the copy) and so ``torch.compile`` can fuse it. Input is
(B, H, W, 3) uint8 as the tile reader yields it; permuting to NCHW leaves the memory
in channels-last order, which convolutions and patch embeddings prefer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .spec import EncoderSpec


def uint8_to_nchw(tiles: torch.Tensor) -> torch.Tensor:
    """Return float (B, 3, H, W) in [0, 255], channels-last in memory, from uint8 (B, H, W, 3)."""
    if tiles.dim() != 4 or tiles.shape[-1] != 3:
        raise ValueError(f"expected tiles of shape (B, H, W, 3), got {tuple(tiles.shape)}")
    return tiles.permute(0, 3, 1, 2).float()


def resize_square(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Resize NCHW images to ``size`` x ``size`` (antialiased when shrinking)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    antialias = mode in ("bilinear", "bicubic") and x.shape[-1] > size
    return F.interpolate(x, size=(size, size), mode=mode, align_corners=False if mode != "area" else None,
                         antialias=antialias)


class TileEncoder(nn.Module):
    """Map uint8 tiles (B, H, W, 3) to float32 embeddings (B, D).

    ``backbone`` maps normalised NCHW images to tokens (B, T, C), or, for ``pooled``
    specs, straight to (B, D).
    """

    def __init__(self, spec: EncoderSpec, backbone: nn.Module, token_dim: int, num_prefix_tokens: int = 1) -> None:
        super().__init__()
        self.spec_name = spec.name
        self.backbone = backbone
        self.input_size = spec.input_size
        self.resize_to = spec.resize_to or spec.input_size
        self.interpolation = spec.interpolation
        self.pooling = spec.pooling
        self.num_prefix_tokens = num_prefix_tokens
        self.embed_dim = token_dim * 2 if spec.pooling == "cls+mean" else token_dim
        mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)
        # x/255 normalised in one multiply-add: (x/255 - mean)/std = x*scale + shift
        self.register_buffer("scale", 1.0 / (255.0 * std), persistent=False)
        self.register_buffer("shift", -mean / std, persistent=False)

    def preprocess(self, tiles: torch.Tensor) -> torch.Tensor:
        """Return normalised float images (B, 3, S, S) ready for the backbone."""
        x = uint8_to_nchw(tiles)
        x = resize_square(x, self.resize_to, self.interpolation)
        if self.resize_to != self.input_size:  # centre crop (GigaPath: resize 256, crop 224)
            o = (self.resize_to - self.input_size) // 2
            x = x[..., o:o + self.input_size, o:o + self.input_size]
        x = x * self.scale + self.shift
        return x.contiguous(memory_format=torch.channels_last)

    def pool(self, out: torch.Tensor) -> torch.Tensor:
        if self.pooling == "pooled":
            return out
        cls = out[:, 0]
        if self.pooling == "cls":
            return cls
        return torch.cat([cls, out[:, self.num_prefix_tokens:].mean(dim=1)], dim=-1)

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        return self.pool(self.backbone(self.preprocess(tiles))).float()


@dataclass
class LoadedEncoder:
    """An encoder ready to run: its spec, its module (uint8 tiles → embeddings) and provenance."""

    spec: EncoderSpec
    module: nn.Module
    embed_dim: int
    weights: Path | None = None
    tiny: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        """The name recorded in outputs: marks test-size and random-weight models."""
        if self.tiny:
            return f"{self.spec.name} (tiny)"
        if self.spec.needs_weights and self.weights is None:
            return f"{self.spec.name} (random weights)"
        return self.spec.name
