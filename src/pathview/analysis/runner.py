"""Run a tile encoder over batches on a device: autocast, channels-last, compile, OOM recovery.

The module maps uint8 tiles (B, H, W, 3) to float32 embeddings; the runner owns how:
bf16 autocast on CUDA (the encoder's ``cuda_dtype``), fp32 on the CPU, optional
``torch.compile`` (partial batches padded so shapes never change), and on CUDA
out-of-memory it halves the batch size and retries the same tiles instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..encoders import LoadedEncoder
from ..errors import PathviewError

#: Largest batch tried on a GPU; out-of-memory halves it.
CUDA_BATCH = 256
CPU_BATCH = 16


class DeviceError(PathviewError):
    """The requested device does not exist here."""


class EncoderOutOfMemoryError(PathviewError):
    """Even one tile does not fit in the device's memory."""


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return a usable torch device for ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    name = str(device or "auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device '{name}' (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{name}' asked for, but torch sees no CUDA GPU here (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device '{name}' asked for, but there are {torch.cuda.device_count()} GPUs")
    return dev


def default_batch_size(encoder: LoadedEncoder, device: torch.device) -> int:
    """Return the first batch size to try: large on a GPU (halved on OOM), small on a CPU."""
    if device.type == "cuda":
        return CUDA_BATCH if encoder.spec.params_m <= 700 else CUDA_BATCH // 2
    return CPU_BATCH


def amp_dtype(encoder: LoadedEncoder, device: torch.device) -> torch.dtype | None:
    """Return the autocast dtype: the encoder's on CUDA (bf16 for ViTs), none (fp32) elsewhere."""
    if device.type != "cuda" or encoder.spec.cuda_dtype == "float32":
        return None
    return getattr(torch, encoder.spec.cuda_dtype)


class BatchRunner:
    """Embed uint8 tile batches with ``encoder`` on ``device``, in chunks of ``batch_size``."""

    def __init__(self, encoder: LoadedEncoder, device: torch.device, batch_size: int | None = None, *,
                 compile: bool = False, on_oom: Callable[[int], None] | None = None, cpu_workers: int = 1) -> None:
        self.encoder = encoder
        self.device = device
        self.batch_size = int(batch_size or default_batch_size(encoder, device))
        self.amp = amp_dtype(encoder, device)
        self.on_oom = on_oom
        self.compiled = compile
        module = encoder.module.to(device)
        if device.type == "cuda":
            torch.set_float32_matmul_precision("high")
            torch.backends.cudnn.benchmark = True
            module = module.to(memory_format=torch.channels_last)
        self.module = torch.compile(module, dynamic=False) if compile else module
        # On a CPU, parts of a batch run on threads of their own (torch ops release the GIL);
        # meant for torch.set_num_threads(1), where OpenMP teams would otherwise fight the readers.
        self._pool = None
        if device.type == "cpu" and cpu_workers > 1:
            self._pool = ThreadPoolExecutor(cpu_workers, thread_name_prefix="encode-cpu")
            self.cpu_workers = cpu_workers

    def close(self) -> None:
        """Stop the CPU worker threads, if any."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _forward(self, tiles: torch.Tensor) -> torch.Tensor:
        if self._pool is not None and len(tiles) > 1:
            parts = torch.tensor_split(tiles, min(self.cpu_workers, len(tiles)))
            return torch.cat(list(self._pool.map(self._forward_part, parts)))
        return self._forward_part(tiles)

    def _forward_part(self, tiles: torch.Tensor) -> torch.Tensor:
        n = len(tiles)
        x = tiles.to(self.device, non_blocking=True)
        if self.compiled and n < self.batch_size:  # keep one static shape: no recompiles
            x = torch.cat([x, x.new_zeros((self.batch_size - n, *x.shape[1:]))])
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.amp or torch.float32,
                                                    enabled=self.amp is not None):
            return self.module(x)[:n].float()

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        """Return (n, D) float32 embeddings on the device for uint8 ``tiles`` (n, H, W, 3)."""
        outs, i = [], 0
        while i < len(tiles):
            chunk = tiles[i:i + self.batch_size]
            oom = False
            try:
                outs.append(self._forward(chunk))
                i += len(chunk)
            except torch.OutOfMemoryError:
                oom = True  # handled outside the except block, once its frames are freed
            if oom:
                self._shrink()
        if not outs:
            return torch.empty((0, self.encoder.embed_dim), device=self.device)
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _shrink(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.batch_size == 1:
            raise EncoderOutOfMemoryError(
                f"'{self.encoder.name}' does not fit in the memory of {self.device} even one tile at a time")
        self.batch_size //= 2
        if self.on_oom is not None:
            self.on_oom(self.batch_size)


def embed_tiles(encoder: LoadedEncoder, tiles: np.ndarray, device: str | torch.device = "cpu",
                batch_size: int | None = None) -> np.ndarray:
    """Return (n, D) float32 embeddings of uint8 tiles (n, H, W, 3): the simple, in-memory way."""
    dev = resolve_device(device)
    runner = BatchRunner(encoder, dev, batch_size)
    return runner(torch.from_numpy(np.ascontiguousarray(tiles))).cpu().numpy()
