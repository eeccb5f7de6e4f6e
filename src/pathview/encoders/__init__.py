"""Tile encoders: a registry of foundation models and a weight-free default, loaded offline.

``list_specs()`` and ``get_spec(name)`` read the registry without importing torch;
``load_encoder(name)`` builds one (torch, timm or transformers are imported then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import EncoderError, ModelNotInstalledError, ModelWeightsError, UnknownEncoderError
from .registry import DEFAULT_ENCODER, get_spec, list_specs, register
from .spec import EncoderSpec

if TYPE_CHECKING:
    from .loader import load_encoder, save_weights
    from .tile_encoder import LoadedEncoder

__all__ = [
    "DEFAULT_ENCODER", "EncoderError", "EncoderSpec", "LoadedEncoder", "ModelNotInstalledError", "ModelWeightsError",
    "UnknownEncoderError", "get_spec", "list_specs", "load_encoder", "register", "save_weights",
]


def __getattr__(name: str) -> Any:
    """Import the torch-heavy parts on first use, so listing the registry stays instant."""
    if name in ("load_encoder", "save_weights"):
        from . import loader

        return getattr(loader, name)
    if name == "LoadedEncoder":
        from .tile_encoder import LoadedEncoder

        return LoadedEncoder
    raise AttributeError(name)
