"""Find the vision-language models installed on this machine; never download.

A model is a local folder in its publisher's layout (a Hugging Face snapshot:
``config.json``, ``*.safetensors``, processor and tokenizer files) under one of the
model roots the encoders use (``$PATHVIEW_MODELS``, ``./models``, the checkout's
``models/``, the user data folder). A folder counts when its ``config.json`` names an
image-text-to-text architecture that transformers loads without remote code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..encoders.weights import models_roots
from .errors import NoAssistantModelError, NotAVisionModelError, UnknownAssistantModelError

#: Architectures the transformers backend loads, with the models users know them by.
VISION_LANGUAGE_ARCHITECTURES: dict[str, str] = {
    "Gemma3ForConditionalGeneration": "Gemma 3 (MedGemma)",
    "Qwen2_5_VLForConditionalGeneration": "Qwen2.5-VL (Lingshu, Patho-R1)",
    "Qwen2VLForConditionalGeneration": "Qwen2-VL",
    "Qwen3VLForConditionalGeneration": "Qwen3-VL",
    "Idefics3ForConditionalGeneration": "Idefics3 (SmolVLM)",
    "SmolVLMForConditionalGeneration": "SmolVLM",
}

#: Models worth installing (folder name, where to get it, family): listed by `pathview models`.
SUGGESTED_MODELS: tuple[tuple[str, str, str], ...] = (
    ("medgemma-4b-it", "google/medgemma-4b-it", "Gemma 3 (MedGemma)"),
    ("Lingshu-7B", "lingshu-medical-mllm/Lingshu-7B", "Qwen2.5-VL (Lingshu, Patho-R1)"),
    ("Qwen2.5-VL-7B-Instruct", "Qwen/Qwen2.5-VL-7B-Instruct", "Qwen2.5-VL (Lingshu, Patho-R1)"),
    ("SmolVLM-Instruct", "HuggingFaceTB/SmolVLM-Instruct", "Idefics3 (SmolVLM)"),
)


@dataclass(frozen=True)
class AssistantModel:
    """One installed model folder."""

    name: str
    path: Path
    architecture: str
    family: str
    size_gb: float

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "path": str(self.path), "architecture": self.architecture,
                "family": self.family, "size_gb": round(self.size_gb, 2)}


def read_architecture(folder: Path) -> str:
    """Return the first architecture named in ``folder/config.json`` ('' when there is none)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return ""
    archs = config.get("architectures") or []
    return str(archs[0]) if archs else ""


def _snapshot(folder: Path) -> Path:
    """Return the newest snapshot of a Hugging Face cache folder (``models--org--name``), else ``folder``."""
    snaps = [p for p in (folder / "snapshots").glob("*") if (p / "config.json").is_file()]
    return max(snaps, key=lambda p: p.stat().st_mtime) if snaps else folder


def inspect_folder(folder: Path) -> AssistantModel | None:
    """Return the model in ``folder`` when it is a vision-language model, else None."""
    folder = _snapshot(folder)
    arch = read_architecture(folder)
    if arch not in VISION_LANGUAGE_ARCHITECTURES:
        return None
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors")) or \
        sum(p.stat().st_size for p in folder.glob("*.bin"))
    name = folder.name if folder.parent.name != "snapshots" else folder.parents[1].name.split("--")[-1]
    return AssistantModel(name, folder, arch, VISION_LANGUAGE_ARCHITECTURES[arch], size / 1e9)


def find_models(roots: list[Path] | None = None) -> list[AssistantModel]:
    """Return every installed vision-language model, in search order, one per name."""
    found: dict[str, AssistantModel] = {}
    for root in roots if roots is not None else models_roots():
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            model = inspect_folder(folder)
            if model is not None and model.name.lower() not in found:
                found[model.name.lower()] = model
    return list(found.values())


def install_folder() -> Path:
    """Return the folder we suggest for installing a model (the first model root)."""
    return models_roots()[0]


def resolve_model(name_or_path: str | os.PathLike | None = None) -> AssistantModel:
    """Return the model named (folder path or installed name), or the first installed one."""
    if name_or_path is not None:
        path = Path(name_or_path).expanduser()
        if path.is_dir():
            model = inspect_folder(path)
            if model is None:
                raise NotAVisionModelError(path, read_architecture(_snapshot(path)))
            return model
    models = find_models()
    if name_or_path is None:
        if not models:
            raise NoAssistantModelError(models_roots(), install_folder())
        return models[0]
    wanted = str(name_or_path).lower()
    for model in models:
        if model.name.lower() == wanted:
            return model
    raise UnknownAssistantModelError(str(name_or_path), [m.name for m in models])
