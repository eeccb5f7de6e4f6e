"""Typed errors of the assistant, each one line a pathologist can act on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import PathviewError


class AssistantError(PathviewError):
    """Base class of assistant problems."""


class NoAssistantModelError(AssistantError):
    """No vision-language model is installed and no server was named."""

    def __init__(self, searched: Sequence[Path], suggested: Path) -> None:
        self.searched = [Path(p) for p in searched]
        self.suggested = Path(suggested)
        super().__init__(install_hint(self.suggested) + f" (looked in: {'; '.join(map(str, self.searched)) or 'nowhere'})")


def install_hint(folder: Path) -> str:
    """Return what to install where so that the assistant has a model."""
    return (
        "no assistant model is installed: copy a vision-language model folder (a Hugging Face snapshot "
        "with config.json, *.safetensors and the processor files), e.g. google/medgemma-4b-it, "
        f"lingshu-medical-mllm/Lingshu-7B or HuggingFaceTB/SmolVLM-Instruct, into {folder}/NAME/; "
        "or run a local OpenAI-compatible server (Ollama, llama.cpp, vLLM) and pass --server URL"
    )


class UnknownAssistantModelError(AssistantError):
    """``--model`` names neither a model folder nor an installed model."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = list(known)
        listed = ", ".join(self.known) if self.known else "none installed"
        super().__init__(f"no assistant model '{name}': give a model folder or one of: {listed}")


class NotAVisionModelError(AssistantError):
    """A folder was given whose config is not an image-text-to-text model."""

    def __init__(self, path: Path, architecture: str) -> None:
        self.path = Path(path)
        self.architecture = architecture
        super().__init__(
            f"'{self.path}' holds a {architecture or 'model without an architecture in config.json'}, "
            "not a vision-language model the assistant can use (e.g. Gemma3ForConditionalGeneration, "
            "Qwen2_5_VLForConditionalGeneration, Idefics3ForConditionalGeneration)"
        )


class AssistantModelLoadError(AssistantError):
    """A model folder was found but could not be loaded."""

    def __init__(self, path: Path, cause: str) -> None:
        self.path = Path(path)
        self.cause = cause
        super().__init__(f"cannot load the assistant model from '{self.path}': {cause}")


class RemoteServerRefusedError(AssistantError):
    """The server is not on this machine and the user did not allow a remote one."""

    def __init__(self, url: str, host: str) -> None:
        self.url = url
        self.host = host
        super().__init__(
            f"refusing to send slide images to '{host}': the assistant server must run on this machine "
            "(localhost); add --allow-remote only if that server may see patient images"
        )


class AssistantServerError(AssistantError):
    """The OpenAI-compatible server could not be reached or answered with an error."""

    def __init__(self, url: str, cause: str) -> None:
        self.url = url
        self.cause = cause
        super().__init__(f"assistant server {url}: {cause}")


class UnknownBackendError(AssistantError):
    """No assistant backend of that name is registered."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        super().__init__(f"unknown assistant backend '{name}'; known: {', '.join(known)}")


class GenerationError(AssistantError):
    """The model failed while writing an answer."""

    def __init__(self, model: str, cause: str) -> None:
        self.model = model
        self.cause = cause
        super().__init__(f"the assistant model '{model}' failed while answering: {cause}")


class RegionOutsideSlideError(AssistantError):
    """The region asked about does not overlap the slide."""

    def __init__(self, box: tuple[int, int, int, int], dimensions: tuple[int, int]) -> None:
        self.box = box
        self.dimensions = dimensions
        x, y, w, h = box
        super().__init__(f"the region x={x} y={y} {w}x{h} lies outside the slide "
                         f"({dimensions[0]} x {dimensions[1]} px)")
