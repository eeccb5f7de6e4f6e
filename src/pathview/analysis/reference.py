"""A reference bank of normal tissue: tile embeddings from chosen slides, searched by nearest neighbours.

``pathview reference build SLIDES... -o BANK`` encodes the slides' clean tissue tiles
(artifact QC on the same pixels drops pen, blur, folds...) into one HDF5 file with the
encoder's name, the per-feature scaling and a calibration of neighbour distances
between *different* slides of the bank (a tile is not compared with its own slide, so
the calibration reflects how far normal tissue of a new slide lies). A slide is then
scored by the mean distance of each tile to its ``k`` nearest bank entries, as a robust
z against that calibration: one threshold (0.5) on every bank.

The search is an exact chunked matmul in torch (``|q|² + |b|² - 2 q·b``, top-k per
chunk, merged), on the GPU when there is one: a million 1536-d entries against ten
thousand tiles is a few seconds on a GPU and well under a minute on a laptop CPU.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PathviewError
from .outliers import logistic, robust_spread

K_NEIGHBOURS = 5
CALIBRATION_TILES = 4000


#: The tag `pathview reference build` writes in a bank's attributes.
BANK_KIND = "pathview-reference-bank"


class ReferenceError(PathviewError):
    """A reference bank is missing, unreadable or does not fit this analysis."""


@dataclass
class ReferenceBank:
    """A loaded bank: standardised features (float32) and what is needed to score against them."""

    path: Path
    encoder: str
    features: np.ndarray  # (M, D) standardised
    slide_ids: np.ndarray  # (M,) int: which bank slide each entry came from
    center: np.ndarray
    scale: np.ndarray
    log_median: float
    log_spread: float
    fingerprint: str

    def check_encoder(self, encoder: str) -> None:
        """Raise :class:`ReferenceError` unless the bank was made with ``encoder``."""
        if encoder != self.encoder:
            raise ReferenceError(f"reference bank '{self.path.name}' was built with encoder '{self.encoder}', "
                                 f"not '{encoder}'; rebuild it or pass --encoder {self.encoder}")

    def standardise(self, features: np.ndarray) -> np.ndarray:
        return ((features.astype(np.float32) - self.center) / self.scale).astype(np.float32)

    def distances(self, features: np.ndarray, device: Any = "cpu", k: int = K_NEIGHBOURS) -> np.ndarray:
        """Return each row's mean distance to its ``k`` nearest bank entries."""
        return knn_mean_distance(self.standardise(features), self.features, k=k, device=device)

    def score(self, features: np.ndarray, device: Any = "cpu") -> np.ndarray:
        """Return calibrated scores in [0, 1] (0.5 = unlike any normal tissue in the bank)."""
        d = self.distances(features, device)
        return logistic((np.log(d + 1e-9) - self.log_median) / self.log_spread)


def knn_mean_distance(queries: np.ndarray, bank: np.ndarray, *, k: int = K_NEIGHBOURS, device: Any = "cpu",
                      exclude: tuple[np.ndarray, np.ndarray] | None = None, query_chunk: int = 4096,
                      bank_chunk: int = 131072) -> np.ndarray:
    """Return the mean Euclidean distance of each query to its ``k`` nearest bank rows (exact, chunked).

    ``exclude=(query_groups, bank_groups)`` ignores bank rows of the query's own group.
    """
    import torch

    dev = torch.device(device) if not isinstance(device, torch.device) else device
    k = max(1, min(k, len(bank)))
    out = np.empty(len(queries), np.float32)
    with torch.inference_mode():
        b_all = torch.from_numpy(np.ascontiguousarray(bank, np.float32))
        for qs in range(0, len(queries), query_chunk):
            q = torch.from_numpy(np.ascontiguousarray(queries[qs:qs + query_chunk], np.float32)).to(dev)
            qn = (q * q).sum(1, keepdim=True)
            best = torch.full((len(q), k), float("inf"), device=dev)
            for bs in range(0, len(bank), bank_chunk):
                b = b_all[bs:bs + bank_chunk].to(dev, non_blocking=True)
                d2 = (qn + (b * b).sum(1)[None, :] - 2.0 * q @ b.T).clamp_min_(0.0)
                if exclude is not None:
                    qg = torch.from_numpy(exclude[0][qs:qs + query_chunk]).to(dev)
                    bg = torch.from_numpy(exclude[1][bs:bs + bank_chunk]).to(dev)
                    d2 = d2.masked_fill(qg[:, None] == bg[None, :], float("inf"))
                kk = min(k, d2.shape[1])
                best = torch.cat([best, d2.topk(kk, dim=1, largest=False).values], 1).topk(k, dim=1,
                                                                                             largest=False).values
            out[qs:qs + len(q)] = best.sqrt().mean(1).cpu().numpy()
    return out


def build_bank(features: Sequence[np.ndarray], encoder: str, out: str | os.PathLike, *, device: Any = "cpu",
               seed: int = 0) -> ReferenceBank:
    """Write a bank from per-slide clean-tile features; return it loaded."""
    import h5py

    from .outputs import atomic_write

    if not features or sum(len(f) for f in features) < 2:
        raise ReferenceError("a reference bank needs at least 2 tissue tiles; no slide gave any clean tissue")
    raw = np.concatenate(features).astype(np.float32)
    ids = np.concatenate([np.full(len(f), i, np.int32) for i, f in enumerate(features)])
    center = np.median(raw, axis=0)
    mad = 1.4826 * np.median(np.abs(raw - center), axis=0)
    scale = np.where(mad > 1e-8, mad, raw.std(axis=0))
    scale = np.maximum(scale, 1e-6 + 1e-3 * float(np.median(scale))).astype(np.float32)
    z = ((raw - center) / scale).astype(np.float32)
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(z), min(CALIBRATION_TILES, len(z)), replace=False)
    # Leave-one-slide-out distances where the bank has several slides; else leave-one-out (skip self).
    if len(features) > 1:
        d = knn_mean_distance(z[sample], z, device=device, exclude=(ids[sample], ids))
    else:
        d = knn_mean_distance(z[sample], z, k=K_NEIGHBOURS + 1, device=device) * (K_NEIGHBOURS + 1) / K_NEIGHBOURS
    med, spread = robust_spread(np.log(d + 1e-9))

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("features", data=z, chunks=(min(65536, len(z)), z.shape[1]))
            f.create_dataset("slide", data=ids)
            f.create_dataset("center", data=center)
            f.create_dataset("scale", data=scale)
            f.attrs.update({"encoder": encoder, "log_median": med, "log_spread": spread, "slides": len(features),
                            "kind": BANK_KIND, "k": K_NEIGHBOURS})

    atomic_write(Path(out), write)
    return load_bank(out)


def bank_encoder(path: str | os.PathLike) -> str:
    """Return the encoder a bank was built with, reading only its header (a bank may hold gigabytes).

    Raises :class:`ReferenceError` with one line when ``path`` is missing or not a bank.
    """
    import h5py

    p = Path(path)
    if not p.exists():
        raise ReferenceError(f"reference bank '{p}' not found (make one with `pathview reference build`)")
    not_a_bank = ReferenceError(f"'{p.name}' is not a pathview reference bank "
                                "(make one with `pathview reference build`)")
    if not p.is_file():
        raise not_a_bank
    try:
        with h5py.File(p, "r") as f:
            if f.attrs.get("kind") != BANK_KIND or "encoder" not in f.attrs:
                raise not_a_bank
            return str(f.attrs["encoder"])
    except OSError:
        raise not_a_bank from None


def load_bank(path: str | os.PathLike) -> ReferenceBank:
    """Load a bank written by :func:`build_bank`."""
    import h5py

    p = Path(path)
    bank_encoder(p)
    try:
        with h5py.File(p, "r") as f:
            bank = ReferenceBank(p, str(f.attrs["encoder"]), f["features"][:], f["slide"][:], f["center"][:],
                                 f["scale"][:], float(f.attrs["log_median"]), float(f.attrs["log_spread"]), "")
    except OSError as exc:
        raise ReferenceError(f"cannot read reference bank '{p.name}': {exc}") from None
    digest = hashlib.sha256(bank.features[:: max(1, len(bank.features) // 1000)].tobytes()).hexdigest()[:16]
    bank.fingerprint = f"{p.name}:{len(bank.features)}:{digest}"
    return bank


def collect_clean_features(slides: Sequence[str | os.PathLike], encoder: Any, *, device: Any = "auto",
                           slide_mpp: float | None = None, tile_mpp: float = 0.5, tile_size: int = 224,
                           workdir: str | os.PathLike, on_slide: Callable[[int, str], None] | None = None
                           ) -> list[np.ndarray]:
    """Analyse each slide into ``workdir`` and return the features of its clean tissue tiles."""
    import h5py

    from .analyze import analyze_slide
    from .artifacts import ARTIFACT_CLASSES
    from .regions import THRESHOLD

    out: list[np.ndarray] = []
    for i, slide in enumerate(slides):
        if on_slide is not None:
            on_slide(i, str(slide))
        folder = Path(workdir) / f"slide-{i:04d}"
        analyze_slide(slide, folder, encoder=encoder, device=device, slide_mpp=slide_mpp, tile_mpp=tile_mpp,
                      tile_size=tile_size)
        with h5py.File(folder / "tiles.h5", "r") as f:
            qc = np.stack([f[f"qc_{c}"][:] for c in ARTIFACT_CLASSES], 1) if len(f["tissue"]) else np.zeros((0, 1))
            keep = (qc.max(1) < THRESHOLD) & (f["tissue"][:] >= 0.5) if len(qc) else np.zeros(0, bool)
            out.append(f["features"][:][keep])
    return out
