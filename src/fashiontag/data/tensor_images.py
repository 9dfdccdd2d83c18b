"""Small images held in memory as one uint8 tensor: the fast path for datasets such as Fashion-MNIST.

`data.in_memory: true` keeps the image cache's rows (data/cache.py: each image decoded once into a uint8
.npy) in RAM, or in GPU memory when they fit there, as one `(N, C, S, S)` uint8 tensor. Training and
prediction then index batches straight out of it (data/tensor_loader.py) and do every per-batch step on
the device with plain tensor ops (data/tensor_augment.py): no per-item Python, no per-batch transform
dispatch, no TensorImage subclass. Fashion-MNIST's 70,000 28x28 images are 55 MB.

A cache whose three channels are equal everywhere (grayscale images decoded to RGB) is kept as one channel:
a third of the memory and of the bytes every batch reads; normalising broadcasts it back to the three
channels the model takes (Fashion-MNIST's CNNs and ImageNet backbones alike take RGB).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fashiontag.core.errors import ConfigError
from fashiontag.data.cache import ImageCache

log = logging.getLogger(__name__)

# Images go to GPU memory when they take at most this many bytes; otherwise batches are copied from pinned RAM.
DEVICE_BYTES = 4 * 2**30
# The memory a caller may ask for before the in-memory path refuses (it would swap rather than speed up).
HOST_BYTES = 16 * 2**30


@dataclass
class TensorImages:
    """`pixels[i]` (uint8, C x S x S, C 1 or 3) is row i of the image cache `path`; `ok[i]` False for
    unreadable images (their rows are zero). `size`, `path`, `ok`, `rows` and `len()` mirror ImageCache."""

    pixels: torch.Tensor
    ok: np.ndarray
    path: Path
    rows: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def size(self) -> int:
        return int(self.pixels.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def device(self) -> torch.device:
        return self.pixels.device


def is_gray(array: np.ndarray, chunk: int = 8192) -> bool:
    """True when every pixel of an (N, S, S, 3) uint8 array has equal R, G and B (checked in chunks)."""
    for start in range(0, len(array), chunk):
        part = np.asarray(array[start:start + chunk])
        if not (np.array_equal(part[..., 0], part[..., 1]) and np.array_equal(part[..., 0], part[..., 2])):
            return False
    return True


def load_pixels(cache: ImageCache) -> np.ndarray:
    """The cache's rows (a view's own rows, in its order) read into RAM: (N, S, S, 3) uint8."""
    array = cache.array
    if cache.rows is not None:
        return np.ascontiguousarray(array[np.asarray(cache.rows, dtype=np.int64)])
    return np.array(array)


def from_cache(cache: ImageCache | TensorImages, device: torch.device) -> TensorImages:
    """The image cache as one in-memory uint8 tensor (gray caches as one channel), on `device` when it fits
    there (DEVICE_BYTES), else in pinned host memory for a GPU, plain host memory for the CPU."""
    if isinstance(cache, TensorImages):
        return TensorImages(_place(cache.pixels, device), cache.ok, cache.path, cache.rows)
    n, s = len(cache), cache.size
    needed = n * s * s * 3
    if needed > HOST_BYTES:
        raise ConfigError(f"data.in_memory: {cache.path} holds {n} images of {s} px ({needed / 2**30:.1f} GiB), "
                          f"more than the in-memory path takes ({HOST_BYTES / 2**30:.0f} GiB); set "
                          "data.in_memory=false")
    array = load_pixels(cache)
    gray = is_gray(array)
    # NHWC -> NCHW without a copy: a permuted view is already the channels_last layout convolutions want.
    pixels = torch.from_numpy(array[..., :1] if gray else array).permute(0, 3, 1, 2)
    pixels = _place(pixels.contiguous(memory_format=torch.channels_last), device)
    log.info("in memory: %d images, %d channel(s), %d px, %.0f MB on %s", n, pixels.shape[1], s,
             pixels.numel() / 1e6, pixels.device)
    return TensorImages(pixels, np.asarray(cache.ok, dtype=bool), Path(cache.path), cache.rows)


def _place(pixels: torch.Tensor, device: torch.device) -> torch.Tensor:
    if pixels.device == device or (device.type == "cuda" and pixels.is_pinned()):
        return pixels
    if device.type == "cuda":
        return pixels.to(device) if pixels.numel() <= DEVICE_BYTES else pixels.pin_memory()
    return pixels.cpu()
