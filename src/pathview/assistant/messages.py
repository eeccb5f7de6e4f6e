"""One message format for every backend: OpenAI-style chat messages with content parts.

A message is ``{"role": ..., "content": str | [part, ...]}``; a part is
``{"type": "text", "text": ...}`` or ``{"type": "image_url", "image_url": {"url":
"data:image/png;base64,..."}}``. Ollama's ``/v1``, llama.cpp server and vLLM take it as
is; the transformers backend turns image URLs back into pictures.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image

Message = dict[str, Any]

_PREFIX = "data:image/png;base64,"


def png_bytes(pixels: np.ndarray | Image.Image) -> bytes:
    """Return ``pixels`` (RGB array or image) encoded as PNG."""
    img = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.asarray(pixels, np.uint8))
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def image_part(png: bytes) -> dict[str, Any]:
    """Return a content part carrying a PNG as a data URL."""
    return {"type": "image_url", "image_url": {"url": _PREFIX + base64.b64encode(png).decode("ascii")}}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def message(role: str, text: str, images: list[bytes] | tuple[bytes, ...] = ()) -> Message:
    """Return one message: images first (as most VLM chat templates expect), then the text."""
    if not images:
        return {"role": role, "content": text}
    return {"role": role, "content": [*(image_part(p) for p in images), text_part(text)]}


def decode_image_url(url: str) -> Image.Image:
    """Return the picture of a ``data:image/...;base64,`` URL (no other URL is fetched)."""
    if not url.startswith("data:image/") or ";base64," not in url:
        raise ValueError("only data:image/...;base64 URLs are accepted (nothing is fetched from the network)")
    data = base64.b64decode(url.split(";base64,", 1)[1], validate=False)
    img = Image.open(io.BytesIO(data))
    img.load()
    return img.convert("RGB")


def image_count(messages: list[Message]) -> int:
    """Return how many images the messages carry."""
    return sum(1 for m in messages if isinstance(m["content"], list)
               for p in m["content"] if p.get("type") in ("image_url", "image"))
