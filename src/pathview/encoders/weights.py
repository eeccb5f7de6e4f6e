"""Find an encoder's weights on local disk and read them; never download.

Weights live in a Hugging Face snapshot folder (``config.json`` optional,
``model.safetensors`` or ``pytorch_model.bin``, possibly sharded with an index). A folder
is looked for, in order, at the path the user gives, under each folder of
``$PATHVIEW_MODELS``, under ``./models``, under the source checkout's ``models/`` and
under the user data folder; inside each, by registry name or by the repo's own name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EncoderError, ModelNotInstalledError, ModelWeightsError
from .spec import EncoderSpec

if TYPE_CHECKING:
    import torch

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
_STANDARD_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                   "pytorch_model.bin.index.json")


def models_roots() -> list[Path]:
    """Return the folders that hold one sub-folder per model, in search order."""
    roots: list[Path] = []
    env = os.environ.get("PATHVIEW_MODELS", "")
    roots += [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    roots.append(Path.cwd() / "models")
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "pyproject.toml").is_file():
        roots.append(checkout / "models")
    try:
        from platformdirs import user_data_dir

        roots.append(Path(user_data_dir("pathview")) / "models")
    except ImportError:  # pragma: no cover - platformdirs is a dependency
        pass
    unique: list[Path] = []
    for r in roots:
        if r not in unique:
            unique.append(r)
    return unique


def candidate_folders(spec: EncoderSpec) -> list[Path]:
    """Return every folder where ``spec``'s weights may be, in search order."""
    return [root / name for root in models_roots() for name in spec.folder_names]


def default_folder(spec: EncoderSpec) -> Path:
    """Return the folder we suggest for installing ``spec`` (the first search location)."""
    return models_roots()[0] / spec.name


def find_weight_file(folder: Path, spec: EncoderSpec) -> Path | None:
    """Return the weights file (or shard index) inside ``folder``, or None."""
    for name in (*spec.files, *_STANDARD_FILES):
        if (folder / name).is_file():
            return folder / name
    loose = sorted(p for p in folder.glob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    return loose[0] if len(loose) == 1 else None


def locate(spec: EncoderSpec, explicit: str | os.PathLike | None = None) -> Path | None:
    """Return the weights file for ``spec``, or None when nothing is installed.

    ``explicit`` may be a folder or a file; a wrong explicit path is an error, not a miss.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path
        if not path.is_dir():
            raise EncoderError(f"the weights given for '{spec.name}', '{path}', do not exist (no such file or folder)")
        found = find_weight_file(path, spec)
        if found is None:
            raise ModelWeightsError(spec.name, path, f"no weights file in the folder (expected {' or '.join(spec.files)})")
        return found
    for folder in candidate_folders(spec):
        if folder.is_dir():
            found = find_weight_file(folder, spec)
            if found is not None:
                return found
    return None


def require(spec: EncoderSpec, explicit: str | os.PathLike | None = None) -> Path:
    """Return the weights file for ``spec`` or raise :class:`ModelNotInstalledError`."""
    found = locate(spec, explicit)
    if found is None:
        raise ModelNotInstalledError(spec.name, spec.files, spec.download_hint, candidate_folders(spec))
    return found


def read_state_dict(path: Path, spec: EncoderSpec) -> dict[str, torch.Tensor]:
    """Read a checkpoint (safetensors, torch pickle, or a shard index) as a flat state dict."""
    try:
        if path.name.endswith(".index.json"):
            weight_map = json.loads(path.read_text())["weight_map"]
            out: dict[str, torch.Tensor] = {}
            for shard in sorted(set(weight_map.values())):
                out.update(_read_one(path.parent / shard))
            return out
        return _read_one(path)
    except ModelWeightsError:
        raise
    except Exception as exc:  # unreadable file: truncated download, wrong format, pickle refused
        raise ModelWeightsError(spec.name, path, f"the file cannot be read ({type(exc).__name__}: {exc})") from None


def _read_one(path: Path) -> dict[str, torch.Tensor]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:  # memory-mapped: a multi-GB checkpoint is not copied before the weights are assigned
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (pre-zip) format cannot be mapped
        obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "teacher"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise ValueError("the checkpoint holds no state dict")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def select_keys(state: Mapping[str, torch.Tensor], spec: EncoderSpec) -> dict[str, torch.Tensor]:
    """Keep the keys of the image encoder: drop other towers, strip the spec's key prefix."""
    out = {}
    for k, v in state.items():
        if any(k.startswith(p) for p in spec.ignore_prefixes):
            continue
        if spec.key_prefix:
            if not k.startswith(spec.key_prefix):
                out[k] = v  # left in, so the strict check names it as unexpected
                continue
            k = k[len(spec.key_prefix):]
        out[k] = v
    return out


def check_state_dict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], spec: EncoderSpec, path: Path) -> None:
    """Raise :class:`ModelWeightsError` unless ``state`` fits ``model`` key for key and shape for shape."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                  if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or mismatched:
        raise ModelWeightsError(spec.name, path, missing=missing, unexpected=unexpected, mismatched=mismatched)
