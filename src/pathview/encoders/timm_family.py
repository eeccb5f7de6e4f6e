"""Encoders that are timm Vision Transformers (UNI, UNI2-h, Virchow2, H-optimus, GigaPath, Kaiko...).

The architecture is built with ``timm.create_model(arch, pretrained=False, **kwargs)``
on the meta device (no time spent on a random init that the weights replace), then
the checkpoint is checked key for key and assigned. Checkpoint keys are timm's own
``state_dict`` keys, as the publishers' Hugging Face snapshots ship them; original
DINOv2-format checkpoints (``mask_token``, ``register_tokens``) go through timm's own
converter first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .spec import EncoderSpec
from .tile_encoder import TileEncoder
from .weights import check_state_dict, read_state_dict, select_keys


def _layer(name: str) -> Any:
    import timm.layers

    return {"swiglu_packed": timm.layers.SwiGLUPacked, "silu": nn.SiLU, "gelu": nn.GELU}[name]


def folder_model_args(spec: EncoderSpec, folder: Path) -> dict[str, Any]:
    """Return ``model_args`` of a timm ``config.json`` beside the weights, if it describes ``spec.arch``.

    timm's hf-hub loading builds from these too. The publisher's file is the authority
    on what it states; the spec supplies the rest, and the layer classes a JSON file
    cannot hold (``mlp_layer``, ``act_layer``), which the model cards pass in code.
    """
    cfg = folder / "config.json"
    if not cfg.is_file():
        return {}
    try:
        data = json.loads(cfg.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("architecture") != spec.arch:
        return {}
    args = data.get("model_args") or {}
    skip = {"pretrained", "num_classes", "mlp_layer", "act_layer", "norm_layer", "block_fn"}
    return {k: v for k, v in args.items() if isinstance(v, (int, float, str, bool, list)) and k not in skip}


def timm_kwargs(spec: EncoderSpec, tiny: bool, folder_args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the ``create_model`` kwargs of ``spec``: folder config applied, layers resolved, tests shrunk."""
    kwargs: dict[str, Any] = {**spec.arch_kwargs, **(folder_args or {}), "num_classes": 0}
    if tiny:
        kwargs.update(spec.tiny_kwargs or {"embed_dim": 48, "depth": 2, "num_heads": 3})
    for key in ("mlp_layer", "act_layer"):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = _layer(kwargs[key])
    return kwargs


def build_vit(spec: EncoderSpec, tiny: bool = False, device: str | torch.device = "meta",
              folder_args: Mapping[str, Any] | None = None) -> nn.Module:
    """Build the bare timm model of ``spec`` (random, or uninitialised on ``meta``)."""
    import timm

    with torch.device(device):
        return timm.create_model(spec.arch, pretrained=False, **timm_kwargs(spec, tiny, folder_args))


class TimmTokens(nn.Module):
    """The timm model's token sequence after the final norm (B, T, C)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)


def wrap(spec: EncoderSpec, model: nn.Module) -> TileEncoder:
    return TileEncoder(spec, TimmTokens(model), model.num_features, model.num_prefix_tokens)


def convert(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Convert an original DINOv2-format checkpoint to timm keys; other checkpoints pass through."""
    state = dict(state)
    if "mask_token" in state or "register_tokens" in state:
        from timm.models.vision_transformer import checkpoint_filter_fn

        state.setdefault("mask_token", torch.zeros(1))  # the converter keys on it, then drops it
        return checkpoint_filter_fn(state, model)
    return state


def random_encoder(spec: EncoderSpec, tiny: bool, device: str | torch.device) -> TileEncoder:
    return wrap(spec, build_vit(spec, tiny, device))


def load_encoder(spec: EncoderSpec, path: Path, tiny: bool) -> TileEncoder:
    model = build_vit(spec, tiny, "meta", folder_model_args(spec, path.parent))
    state = convert(select_keys(read_state_dict(path, spec), spec), model)
    check_state_dict(model, state, spec, path)
    model.load_state_dict(state, strict=True, assign=True)
    return wrap(spec, model.float())


def save_weights(encoder: TileEncoder, folder: Path) -> Path:
    """Write ``encoder``'s weights as a publisher's snapshot would ship them (``model.safetensors``)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in encoder.backbone.model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    return folder / "model.safetensors"
