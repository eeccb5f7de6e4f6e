"""The encoder registry: specs by name, as timm's ``register_model`` keeps models.

A new encoder is one module in ``zoo/`` that calls :func:`register`, plus one import
line in ``zoo/__init__.py``; the tests parametrise over :func:`list_specs`.
"""

from __future__ import annotations

from .errors import UnknownEncoderError
from .spec import EncoderSpec

_REGISTRY: dict[str, EncoderSpec] = {}

#: The encoder used when none is named: weight-free, fast on a CPU.
DEFAULT_ENCODER = "pathview-he"


def register(spec: EncoderSpec) -> EncoderSpec:
    """Add ``spec`` under its name; a name may be registered once."""
    key = spec.name.lower()
    if key in _REGISTRY:
        raise ValueError(f"encoder {spec.name!r} is already registered")
    _REGISTRY[key] = spec
    return spec


def get_spec(name: str) -> EncoderSpec:
    """Return the spec called ``name`` (case-insensitive), or raise naming the known ones."""
    _load_zoo()
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise UnknownEncoderError(name, sorted(_REGISTRY)) from None


def list_specs(family: str | None = None) -> list[EncoderSpec]:
    """Return every registered spec (optionally of one family), default encoder first."""
    _load_zoo()
    specs = [s for s in _REGISTRY.values() if family is None or s.family == family]
    return sorted(specs, key=lambda s: (s.name != DEFAULT_ENCODER, s.name))


def _load_zoo() -> None:
    from . import zoo  # noqa: F401  (registers on import)
