"""Fashion-MNIST idx files written by the tests: the format's writer (the inverse of data.idx.read_idx) and
generated stand-ins for the four official files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from fashiontag.core.files import atomic_open
from fashiontag.data.idx import _DTYPES, CLASSES, IMAGE_SIZE, SPLITS


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write `array` in the idx format (gzipped when the name ends in .gz): the inverse of read_idx."""
    path = Path(path)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}
    arr = np.asarray(array)
    code = codes.get(arr.dtype)
    if code is None:
        raise ValueError(f"idx cannot store dtype {arr.dtype}")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    with atomic_open(path, "wb") as fh:
        fh.write(gzip.compress(payload, mtime=0) if path.suffix == ".gz" else payload)
    return path


def write_synthetic(folder: str | Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Generated stand-ins for the four official files : the brightness of each 28x28
    image says its class (label i % 10), so even a GAP network learns them in a few epochs."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = (np.arange(n) % len(CLASSES)).astype(np.uint8)
        base = (labels.astype(np.float32) * 25 + 10)[:, None, None]
        images = np.clip(base + rng.normal(0, 6, (n, IMAGE_SIZE, IMAGE_SIZE)), 0, 255).astype(np.uint8)
        write_idx(folder / f"{SPLITS[split]}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{SPLITS[split]}-labels-idx1-ubyte.gz", labels)
    return folder
