"""The PySide6 desktop face: a thin view over core objects (only this package imports Qt)."""
