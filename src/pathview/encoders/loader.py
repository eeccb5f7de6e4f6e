"""Build an encoder by name: with the user's weights, random weights (benchmarks) or tiny (tests).

Never downloads and never asks a library for ``pretrained=True``: weights come from a
local folder (see :mod:`pathview.encoders.weights`) and must fit the architecture key
for key, or :class:`~pathview.encoders.errors.ModelWeightsError` says which do not.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import torch

from .registry import DEFAULT_ENCODER, get_spec
from .spec import EncoderSpec
from .tile_encoder import LoadedEncoder, TileEncoder
from .weights import require

_FAMILY_MODULES = {"timm": "timm_family", "transformers": "hf_family", "conch": "conch_family"}


def family_module(spec: EncoderSpec) -> ModuleType:
    """Return the module that builds and loads ``spec``'s family."""
    return importlib.import_module(f"{__package__}.{_FAMILY_MODULES[spec.family]}")


def load_encoder(
    name: str = DEFAULT_ENCODER,
    weights: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    random_weights: bool = False,
    tiny: bool = False,
) -> LoadedEncoder:
    """Return the encoder ``name`` on ``device`` in eval mode.

    ``weights``: a folder or file; default: the first installed folder (see
    :func:`~pathview.encoders.weights.candidate_folders`). ``random_weights`` builds the
    real architecture randomly initialised, directly on ``device`` (speed benchmarks:
    speed does not depend on the values). ``tiny`` shrinks width and depth (tests only).
    """
    spec = get_spec(name)
    path: Path | None = None
    if spec.family == "builtin":
        from .builtin_he import HEStatsEncoder

        module: torch.nn.Module = HEStatsEncoder()
    elif random_weights:
        module = family_module(spec).random_encoder(spec, tiny, device)
    else:
        path = require(spec, weights)
        module = family_module(spec).load_encoder(spec, path, tiny)
    module = module.to(device).eval().requires_grad_(False)
    return LoadedEncoder(spec=spec, module=module, embed_dim=int(module.embed_dim), weights=path, tiny=tiny)


def save_weights(encoder: LoadedEncoder, folder: str | os.PathLike) -> Path:
    """Write ``encoder``'s weights in its publisher's snapshot layout; return the weights file.

    Tests and benchmarks use it to make installable model folders from random models.
    """
    if not isinstance(encoder.module, TileEncoder):
        raise ValueError(f"encoder '{encoder.name}' has no weights to save")
    return family_module(encoder.spec).save_weights(encoder.module, Path(folder))
