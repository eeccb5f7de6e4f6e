"""Where pathview keeps what it makes (annotations, analysis results): never beside the slide.

Hospital shares are often read-only and slides get renamed, so everything is filed
under a workspace folder by the slide's quickhash. The default is the user data
folder; ``--workspace DIR`` (or ``PATHVIEW_WORKSPACE``) chooses another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir


def default_root() -> Path:
    env = os.environ.get("PATHVIEW_WORKSPACE")
    return Path(env) if env else Path(user_data_dir("pathview", appauthor=False)) / "workspace"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike | None = None) -> Workspace:
        """Return the workspace at ``path`` (the default one when None), creating the folder."""
        root = Path(path).expanduser() if path is not None else default_root()
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    @property
    def findings_db(self) -> Path:
        """The SQLite file holding every slide's annotations and findings."""
        return self.root / "findings.sqlite"

    def analysis_dir(self, quickhash: str) -> Path:
        """The scan output folder (DESIGN.md contract) for one slide's analysis."""
        return self.root / "analysis" / quickhash
