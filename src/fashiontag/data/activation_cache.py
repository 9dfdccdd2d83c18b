"""Activation cache: a frozen body prefix's output for every image of an image cache, one fp16 .npy per view.

Partial fine-tuning (models/partial.py) trains only a body's last stages; what comes before them is the
same numbers in every fold and epoch, so it is computed once and memory-mapped from
`<cache.dir>/activations/<backbone>_<key>_<view>.npy` (float16, (N, C, H, W)) with a JSON note beside it.

The key is everything an activation depends on: the image cache file (its name is the digest of the image
paths, each file's size and mtime, the size, resize mode and fill: a changed image, a different size or a
letterbox-vs-squish switch is a different file), the body identity and cut (`spec`: the prefix's weight
digest, normalisation, augmentation, seed) and the view. A request for a subset of an image cache (an image
cache view, e.g. one fold's photos) reads the rows of the whole cache's activations when those exist, and is
computed (for those rows only) otherwise. Files are written to a temporary name and renamed when complete,
so an interrupted pass never leaves a file that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from fashiontag.core.files import atomic_write_json, read_json
from fashiontag.data.cache import ImageCache

log = logging.getLogger(__name__)

VERSION = 1
SUBDIR = "activations"


class RowView:
    """Rows `rows` of a (N, ...) memmap, indexed like an array of len(rows) (reads only what is asked)."""

    def __init__(self, base: np.ndarray, rows: np.ndarray):
        self.base, self.rows = base, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    def __getitem__(self, idx):
        if isinstance(idx, int | np.integer):
            return self.base[int(self.rows[idx])]
        return self.base[self.rows[idx]]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.base[self.rows]
        return out if dtype is None else out.astype(dtype)


def _rows_digest(rows: np.ndarray | None) -> str | None:
    return None if rows is None else hashlib.sha1(np.asarray(rows, np.int64).tobytes()).hexdigest()


PLAIN_VIEWS = ("orig", "flip")
RANDOM_ONLY = ("augment", "seed")  # what only the augmented views depend on


def activation_key(image_file: str, spec: dict, view: str, rows: np.ndarray | None = None) -> str:
    """16 hex digits naming one view's activations of one image cache file (or of `rows` of it).

    The plain views do not depend on the augmentation settings or the seed, so changing those keeps them."""
    if view in PLAIN_VIEWS:
        spec = {k: v for k, v in spec.items() if k not in RANDOM_ONLY}
    blob = json.dumps([VERSION, image_file, spec, view, _rows_digest(rows)], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


class ActivationWriter:
    """Fills one view's file batch by batch (allocated at the first batch), then `commit` renames it in place."""

    def __init__(self, path: Path, n: int, meta: dict):
        self.path, self.n, self.meta = path, n, meta
        self.tmp: str | None = None
        self.arr: np.ndarray | None = None

    def write(self, start: int, batch: np.ndarray) -> None:
        if self.arr is None:
            fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".npy.tmp", dir=self.path.parent)
            os.close(fd)
            self.arr = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.float16,
                                                 shape=(self.n, *batch.shape[1:]))
        self.arr[start:start + len(batch)] = batch

    def commit(self) -> None:
        if self.arr is None:  # no image at all: an empty file of unknown shape is never needed
            raise ValueError(f"{self.path}: nothing was written")
        self.arr.flush()
        shape = list(self.arr.shape)
        self.arr = None
        os.replace(self.tmp, self.path)
        self.tmp = None
        atomic_write_json(self.path.with_suffix(".json"), {**self.meta, "shape": shape})

    def discard(self) -> None:
        self.arr = None
        if self.tmp is not None:
            Path(self.tmp).unlink(missing_ok=True)
            self.tmp = None


class ActivationStore:
    """The activation files under one folder (normally `<cache.dir>/activations`)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, spec: dict, key: str, view: str) -> Path:
        return self.root / f"{spec.get('backbone', 'body')}_{key}_{view}.npy"

    def _load(self, path: Path, key: str, n: int) -> np.ndarray | None:
        meta_path = path.with_suffix(".json")
        if not (path.exists() and meta_path.exists()):
            return None
        try:
            meta = read_json(meta_path)
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("key") != key or meta.get("n") != n:
            return None
        return np.load(path, mmap_mode="r")

    def lookup(self, cache: ImageCache, spec: dict, view: str) -> np.ndarray | RowView | None:
        """The stored activations of `view` for the cache's images in order, or None when not stored."""
        image_file = Path(cache.path).name
        if cache.rows is not None:  # a view of a larger image cache: its whole-cache activations, if any
            key = activation_key(image_file, spec, view)
            base = self._load(self._path(spec, key, view), key, len(cache.array))
            if base is not None:
                log.info("activation cache reused: %d of the %d rows of %s (%s)", len(cache), len(base), key, view)
                return RowView(base, cache.rows)
        key = activation_key(image_file, spec, view, cache.rows)
        arr = self._load(self._path(spec, key, view), key, len(cache))
        if arr is not None:
            log.info("activation cache reused: %s (%s, %d images)", key, view, len(cache))
        return arr

    def writer(self, cache: ImageCache, spec: dict, view: str) -> ActivationWriter:
        """A writer for `view` of exactly the cache's images (its rows, for a view of a larger cache)."""
        self.root.mkdir(parents=True, exist_ok=True)
        key = activation_key(Path(cache.path).name, spec, view, cache.rows)
        meta = {"version": VERSION, "key": key, "view": view, "n": len(cache), "image_cache": str(cache.path),
                "rows": _rows_digest(cache.rows), "spec": spec}
        return ActivationWriter(self._path(spec, key, view), len(cache), meta)
