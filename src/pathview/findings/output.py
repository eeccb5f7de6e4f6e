"""Write export files atomically: a reader never sees half a file, a failed export leaves none."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import AnnotationExportError


def atomic_write(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    if not path.parent.is_dir():
        raise AnnotationExportError(path, f"the folder '{path.parent}' does not exist")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an export is meant to be shared
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        cause = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
        raise AnnotationExportError(path, cause) from None
    return path
