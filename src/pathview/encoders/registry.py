"""The encoder registry: specs by name, as timm's ``register_model`` keeps models.

A new encoder is one module in ``zoo/`` that calls :func:`register`, plus one import
line in ``zoo/__init__.py``; the tests parametrise over :func:`list_specs`.
"""

from __future__ import annotations

from .errors import UnknownEncoderError
from .spec import EncoderSpec

_REGISTRY: dict[str, EncoderSpec] = {}
_ALIASES: dict[str, str] = {}

#: The encoder used when none is named: weight-free, fast on a CPU.
DEFAULT_ENCODER = "pathview-he"


def register(spec: EncoderSpec) -> EncoderSpec:
    """Add ``spec`` under its name and aliases; each name may be taken once."""
    key = spec.name.lower()
    for name in (key, *(a.lower() for a in spec.aliases)):
        if name in _REGISTRY or name in _ALIASES:
            raise ValueError(f"encoder name {name!r} is already registered")
    _REGISTRY[key] = spec
    _ALIASES.update((a.lower(), key) for a in spec.aliases)
    return spec


def get_spec(name: str) -> EncoderSpec:
    """Return the spec called ``name`` or one of its aliases (case-insensitive), or raise naming the known
    ones. Outputs record the spec's own name, whichever was asked for."""
    _load_zoo()
    key = name.strip().lower()
    try:
        return _REGISTRY[_ALIASES.get(key, key)]
    except KeyError:
        raise UnknownEncoderError(name, sorted(_REGISTRY)) from None


def list_specs(family: str | None = None) -> list[EncoderSpec]:
    """Return every registered spec (optionally of one family), default encoder first."""
    _load_zoo()
    specs = [s for s in _REGISTRY.values() if family is None or s.family == family]
    return sorted(specs, key=lambda s: (s.name != DEFAULT_ENCODER, s.name))


def _load_zoo() -> None:
    from . import zoo  # noqa: F401  (registers on import)
