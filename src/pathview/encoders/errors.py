"""Typed errors of the encoders, each one line a person can act on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import PathviewError
from ..wording import count


def _few(keys: Sequence[str], n: int = 4) -> str:
    keys = sorted(keys)
    more = f", ... ({len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


class EncoderError(PathviewError):
    """Base class of encoder problems."""


class UnknownEncoderError(EncoderError):
    """No encoder of that name is registered."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = list(known)
        super().__init__(f"unknown encoder '{name}'; known encoders: {', '.join(self.known)}")


class ModelNotInstalledError(EncoderError):
    """No weights were found for an encoder that needs them."""

    def __init__(self, name: str, files: Sequence[str], where: str, searched: Sequence[Path]) -> None:
        self.name = name
        self.files = list(files)
        self.searched = [Path(p) for p in searched]
        looked = "; ".join(str(p) for p in self.searched) or "nowhere"
        super().__init__(
            f"encoder '{name}' is not installed: put {' or '.join(self.files)} (from {where}) in "
            f"models/{name}/ or give --weights PATH (looked in: {looked})"
        )


class ModelWeightsError(EncoderError):
    """Weights were found but do not fit the architecture (or cannot be read)."""

    def __init__(self, name: str, path: str | Path, cause: str = "", missing: Sequence[str] = (),
                 unexpected: Sequence[str] = (), mismatched: Sequence[str] = ()) -> None:
        self.name = name
        self.path = Path(path)
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = sorted(mismatched)
        parts = [cause] if cause else []
        if self.missing:
            parts.append(f"{count(len(self.missing), 'missing key')} ({_few(self.missing)})")
        if self.unexpected:
            parts.append(f"{count(len(self.unexpected), 'unexpected key')} ({_few(self.unexpected)})")
        if self.mismatched:
            parts.append(f"{count(len(self.mismatched), 'key')} of the wrong shape ({_few(self.mismatched, 2)})")
        super().__init__(
            f"cannot load the '{name}' weights from '{self.path}': {'; '.join(parts)} "
            "(is this the right model, complete and unmodified?)"
        )
