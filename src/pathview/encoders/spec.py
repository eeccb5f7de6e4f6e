"""What an encoder is, as data: architecture, preprocessing, embedding, weights, provenance.

A spec is cheap to import (no torch): the registry, ``pathview models`` and the docs read
it without building anything. The build itself lives in the family modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BIOPTIMUS_MEAN = (0.707223, 0.578729, 0.703617)
BIOPTIMUS_STD = (0.211883, 0.230117, 0.177517)
HALF = (0.5, 0.5, 0.5)

#: Families know how to build and load: see :mod:`pathview.encoders.loader`.
FAMILIES = ("builtin", "timm", "transformers", "conch")
#: How the tile embedding is formed from the output tokens.
#: ``cls``: the class token; ``cls+mean``: class token concatenated with the mean of the
#: patch tokens (register tokens skipped); ``pooled``: the backbone returns the vector.
POOLINGS = ("cls", "cls+mean", "pooled")


@dataclass(frozen=True)
class EncoderSpec:
    """One tile encoder: everything needed to build it, feed it and cite it."""

    name: str
    title: str
    family: str
    arch: str
    embed_dim: int
    card: str
    licence: str
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    tiny_kwargs: Mapping[str, Any] = field(default_factory=dict)
    input_size: int = 224
    resize_to: int | None = None
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    pooling: str = "cls"
    mpp: float = 0.5
    cuda_dtype: str = "bfloat16"
    files: tuple[str, ...] = ("pytorch_model.bin",)
    repo: str = ""
    params_m: float = 0.0
    key_prefix: str = ""
    ignore_prefixes: tuple[str, ...] = ()
    notes: str = ""
    #: Other names that select this encoder: the ones TRIDENT users type (``uni_v1``, ``hoptimus0``).
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: unknown family {self.family!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"{self.name}: unknown pooling {self.pooling!r}")
        if self.resize_to is not None and self.resize_to < self.input_size:
            raise ValueError(f"{self.name}: resize_to must be at least input_size")

    @property
    def needs_weights(self) -> bool:
        return self.family != "builtin"

    @property
    def folder_names(self) -> tuple[str, ...]:
        """Folder names accepted under a models directory: the registry name, then the repo's."""
        names = [self.name]
        if self.repo:
            base = self.repo.rsplit("/", 1)[-1]
            if base not in names:
                names.append(base)
        return tuple(names)

    @property
    def download_hint(self) -> str:
        return f"https://huggingface.co/{self.repo}" if self.repo else self.card
