"""What every assistant backend does, and the registry that names them (timm's ``register_model`` habit).

A backend loads once (slow: report progress), then streams answers to chat messages
(:mod:`.messages`) as text pieces, and stops within a second when asked. A new backend
is one module that decorates its class with :func:`register_backend`, plus one import
line in :func:`_load_builtin`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import UnknownBackendError
from .messages import Message

#: Longest image side sent when a backend states no budget of its own.
DEFAULT_IMAGE_BUDGET = 1024


@dataclass(frozen=True)
class LoadEvent:
    """One step of loading a model: ``fraction`` in [0, 1]; ``error`` set when loading failed."""

    stage: str
    fraction: float
    error: Exception | None = None

    @property
    def done(self) -> bool:
        return self.fraction >= 1.0 or self.error is not None


ProgressFn = Callable[[LoadEvent], None]


class Backend(ABC):
    """A vision-language model that answers chat messages, token by token."""

    #: Registry name of the backend kind ("transformers", "openai").
    kind: str = ""

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The model's name as shown to the user and recorded with each answer."""

    @property
    def image_budget(self) -> int:
        """Longest image side (px) worth sending: larger images are downsampled by the model anyway."""
        return DEFAULT_IMAGE_BUDGET

    @property
    def loaded(self) -> bool:
        return True

    def load(self, progress: ProgressFn | None = None) -> None:
        """Make the model ready (slow for local weights); report steps to ``progress``."""
        if progress is not None:
            progress(LoadEvent("ready", 1.0))

    @abstractmethod
    def stream(self, messages: list[Message], stop: threading.Event | None = None,
               max_new_tokens: int = 512) -> Iterator[str]:
        """Yield the answer in pieces; end within a second of ``stop`` being set."""

    def close(self) -> None:
        """Release the model (memory, connections)."""


def load_in_background(backend: Backend, progress: ProgressFn) -> threading.Thread:
    """Load ``backend`` on a daemon thread; ``progress`` ends with a done event (or one with ``error``)."""

    def run() -> None:
        try:
            backend.load(progress)
        except Exception as exc:  # reported to the caller as the final event, never lost
            progress(LoadEvent("failed", 0.0, error=exc))

    thread = threading.Thread(target=run, name=f"assistant-load-{backend.kind}", daemon=True)
    thread.start()
    return thread


_REGISTRY: dict[str, type[Backend]] = {}


def register_backend(name: str) -> Callable[[type[Backend]], type[Backend]]:
    """Record a backend class under ``name``; a name may be registered once."""

    def add(cls: type[Backend]) -> type[Backend]:
        if name in _REGISTRY:
            raise ValueError(f"assistant backend {name!r} is already registered")
        cls.kind = name
        _REGISTRY[name] = cls
        return cls

    return add


def backend_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def create_backend(name: str, **options: Any) -> Backend:
    """Return a new (not yet loaded) backend of kind ``name``."""
    _load_builtin()
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise UnknownBackendError(name, sorted(_REGISTRY)) from None
    return cls(**options)


def _load_builtin() -> None:
    from . import openai_backend, process_backend, transformers_backend  # noqa: F401  (register on import)
