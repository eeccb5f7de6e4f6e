"""Wrap numpy RGB arrays as QImages without copying."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def to_qimage(rgb: np.ndarray) -> QImage:
    """Return a QImage viewing ``rgb`` (h, w, 3) uint8; keep the array alive while it is used."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)


def from_qimage(image: QImage) -> np.ndarray:
    """Return an (h, w, 3) uint8 copy of a QImage's RGB pixels."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = img.height(), img.width(), img.bytesPerLine()
    return np.frombuffer(img.constBits(), np.uint8, count=h * stride).reshape(h, stride)[:, :w * 3].reshape(h, w, 3).copy()
