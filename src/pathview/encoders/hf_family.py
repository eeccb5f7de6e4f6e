"""Encoders that are transformers vision models (Phikon: ViT; Phikon-v2: DINOv2).

Loaded with ``from_pretrained(folder, local_files_only=True)``: transformers maps the
key names of checkpoints saved by older versions (``attention.attention.query`` →
``attention.q_proj`` in transformers 5) and reports missing, unexpected and
mis-shaped keys, which we turn into :class:`ModelWeightsError`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ModelWeightsError
from .spec import EncoderSpec
from .tile_encoder import TileEncoder

_TINY = {"hidden_size": 48, "num_hidden_layers": 2, "num_attention_heads": 3, "intermediate_size": 96, "mlp_ratio": 2}


def _classes(spec: EncoderSpec) -> tuple[Any, Any]:
    import transformers

    model_cls = getattr(transformers, spec.arch)
    return model_cls, model_cls.config_class


def make_config(spec: EncoderSpec, tiny: bool) -> Any:
    """Return the spec's default config (shrunk for tests when ``tiny``)."""
    _, config_cls = _classes(spec)
    kwargs = dict(spec.arch_kwargs)
    if tiny:
        kwargs.update(spec.tiny_kwargs or _TINY)
    return config_cls(**kwargs)


def _model_kwargs(spec: EncoderSpec) -> dict[str, Any]:
    return {"add_pooling_layer": False} if spec.arch == "ViTModel" else {}


@contextlib.contextmanager
def _quiet():
    """Silence transformers' load report and progress bars: we report problems ourselves."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


class HFTokens(nn.Module):
    """The transformers model's ``last_hidden_state`` (B, T, C), after its final norm."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).last_hidden_state


def wrap(spec: EncoderSpec, model: nn.Module) -> TileEncoder:
    cfg = model.config
    prefix = 1 + int(getattr(cfg, "num_register_tokens", 0) or 0)
    return TileEncoder(spec, HFTokens(model), cfg.hidden_size, prefix)


def random_encoder(spec: EncoderSpec, tiny: bool, device: str | torch.device) -> TileEncoder:
    model_cls, _ = _classes(spec)
    with torch.device(device):
        model = model_cls(make_config(spec, tiny), **_model_kwargs(spec))
    return wrap(spec, model)


def load_encoder(spec: EncoderSpec, path: Path, tiny: bool) -> TileEncoder:
    model_cls, config_cls = _classes(spec)
    folder = path.parent
    config = None if (folder / "config.json").is_file() else make_config(spec, tiny)
    try:
        with _quiet():
            model, info = model_cls.from_pretrained(
                str(folder), config=config, local_files_only=True, output_loading_info=True,
                ignore_mismatched_sizes=True, dtype=torch.float32, **_model_kwargs(spec))
    except OSError as exc:
        raise ModelWeightsError(spec.name, folder, f"transformers cannot read it ({exc})") from None
    unexpected = [k for k in info["unexpected_keys"] if not k.startswith(spec.ignore_prefixes)]
    mismatched = [f"{k}: {tuple(a)} vs {tuple(b)}" for k, a, b in info["mismatched_keys"]]
    if info["missing_keys"] or unexpected or mismatched:
        raise ModelWeightsError(spec.name, folder, missing=info["missing_keys"], unexpected=unexpected,
                                mismatched=mismatched)
    return wrap(spec, model.float())


def save_weights(encoder: TileEncoder, folder: Path) -> Path:
    """Write ``encoder``'s weights with ``save_pretrained`` (``config.json`` + ``model.safetensors``)."""
    with _quiet():
        encoder.backbone.model.save_pretrained(str(folder))
    return folder / "model.safetensors"
