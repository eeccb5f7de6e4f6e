"""Counted nouns for messages people read: "1 tile", "2 tiles"."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """Return ``n`` with ``noun`` in the right number (``plural`` for irregular ones)."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"
