"""Command-line commands of the encoders: registered on the main app by cli.py."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the encoder commands (`models`, `encode`) to ``app``."""
