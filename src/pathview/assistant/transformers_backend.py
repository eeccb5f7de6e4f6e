"""Run a local vision-language model with transformers (MedGemma, Qwen2.5-VL family, SmolVLM).

Loads ``AutoModelForImageTextToText`` and ``AutoProcessor`` from a local folder only
(bf16 on CUDA when present, else fp32 on the CPU); generates on a worker thread and
streams text through ``TextIteratorStreamer``; a stopping criterion watching a
``threading.Event`` ends generation within a token or two. torch and transformers are
imported on load, so listing models stays instant.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .backend import DEFAULT_IMAGE_BUDGET, Backend, LoadEvent, ProgressFn, register_backend
from .discovery import AssistantModel, resolve_model
from .errors import AssistantError, AssistantModelLoadError, GenerationError
from .messages import Message, decode_image_url

#: A stalled generate thread (it should emit a piece every few hundred ms) is reported after this long.
PIECE_TIMEOUT_S = 600.0


@register_backend("transformers")
class TransformersBackend(Backend):
    """A model folder loaded in-process; ``device`` is auto, cpu, cuda or cuda:N."""

    def __init__(self, model: str | Path | AssistantModel | None = None, device: str = "auto") -> None:
        self.info = model if isinstance(model, AssistantModel) else resolve_model(model)
        self.device_name = device
        self.model: Any = None
        self.processor: Any = None
        self.device: Any = None
        self._lock = threading.Lock()  # one generation at a time per loaded model

    @property
    def model_name(self) -> str:
        return self.info.name

    @property
    def loaded(self) -> bool:
        return self.model is not None

    @property
    def image_budget(self) -> int:
        """The processor's own input size (Gemma 3: 896), capped for dynamic-resolution models."""
        ip = getattr(self.processor, "image_processor", None)
        size = getattr(ip, "size", None) or {}

        def get(key: str) -> int | None:
            value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
            return int(value) if value else None

        if hasattr(ip, "merge_size"):  # Qwen-VL family: the size bounds are pixel counts, not sides
            side = int((get("longest_edge") or get("max_pixels") or DEFAULT_IMAGE_BUDGET ** 2) ** 0.5)
        else:
            side = get("height") or get("longest_edge") or DEFAULT_IMAGE_BUDGET
        return min(side, DEFAULT_IMAGE_BUDGET)

    def load(self, progress: ProgressFn | None = None) -> None:
        report = progress or (lambda e: None)
        report(LoadEvent("importing torch and transformers", 0.02))
        import transformers
        from transformers import AutoModelForImageTextToText, AutoProcessor

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        self.device, dtype = _pick_device(self.device_name)
        path = self.info.path
        try:
            report(LoadEvent("reading the processor", 0.15))
            processor = AutoProcessor.from_pretrained(path, local_files_only=True)
            report(LoadEvent(f"loading {self.info.size_gb:.1f} GB of weights ({dtype_name(dtype)})", 0.25))
            model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True, dtype=dtype)
            report(LoadEvent(f"moving the model to {self.device}", 0.9))
            model.to(self.device).eval()
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
            raise AssistantModelLoadError(path, f"{type(exc).__name__}: {exc}") from None
        if not hasattr(processor, "image_processor"):
            raise AssistantModelLoadError(path, "the folder holds no image processor (processor_config.json)")
        self.processor, self.model = processor, model
        report(LoadEvent(f"{self.info.name} ready on {self.device}", 1.0))

    def encode(self, messages: list[Message]) -> Any:
        """Return the model inputs (ids, pixel values...) for ``messages`` on the model's device."""
        inputs = self.processor.apply_chat_template(
            [_with_pictures(m) for m in messages], add_generation_prompt=True, tokenize=True,
            return_dict=True, return_tensors="pt")
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs and self.model.dtype.is_floating_point:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs

    def stream(self, messages: list[Message], stop: threading.Event | None = None,
               max_new_tokens: int = 512) -> Iterator[str]:
        if self.model is None:
            self.load()
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        halt = threading.Event()

        class _Halt(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):  # noqa: ANN001 - transformers' signature
                return halt.is_set() or (stop is not None and stop.is_set())

        with self._lock:
            try:
                inputs = self.encode(messages)
            except (ValueError, TypeError, KeyError, RuntimeError) as exc:  # e.g. more images than the model takes
                raise GenerationError(self.model_name, f"the question cannot be prepared ({exc})") from None
            streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                            timeout=PIECE_TIMEOUT_S)
            failure: list[BaseException] = []

            def run() -> None:
                try:
                    with torch.inference_mode():
                        self.model.generate(**inputs, streamer=streamer, max_new_tokens=max_new_tokens,
                                            do_sample=False, stopping_criteria=StoppingCriteriaList([_Halt()]))
                except BaseException as exc:  # handed to the reader below, never lost on this thread
                    failure.append(exc)
                    streamer.end()

            worker = threading.Thread(target=run, name="assistant-generate", daemon=True)
            worker.start()
            try:
                for piece in streamer:
                    if piece:
                        yield piece
            finally:
                halt.set()  # the reader left early (closed generator): end generation too
                worker.join()
        if failure:
            raise GenerationError(self.model_name, f"{type(failure[0]).__name__}: {failure[0]}")

    def close(self) -> None:
        self.model = self.processor = None


def _with_pictures(msg: Message) -> Message:
    """Turn image data URLs into pictures, the part type every chat template understands."""
    if isinstance(msg["content"], str):
        return msg
    parts = []
    for part in msg["content"]:
        if part.get("type") == "image_url":
            parts.append({"type": "image", "image": decode_image_url(part["image_url"]["url"])})
        else:
            parts.append(part)
    return {**msg, "content": parts}


def _pick_device(name: str) -> tuple[Any, Any]:
    """Return (device, dtype): CUDA in bf16 when asked or present, else the CPU in fp32."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AssistantError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AssistantError(f"device '{name}': no CUDA GPU is available on this machine; use --device cpu (or auto)")
    if device.type == "cuda":
        return device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return device, torch.float32


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")
