"""Decoded image cache: every image is decoded and resized ONCE into a uint8 (N, S, S, 3) .npy memmap.

Why: JPEG decoding and resizing on the CPU is what limits fastai's stock pipeline (DESIGN.md §4); with
the cache, training reads raw uint8 rows (cheap, page-cached, shareable across DataLoader workers) and
does every per-epoch step (float conversion, resizing to the stage size, augmentation, normalisation)
batch-wise on the device.

Images are letterboxed by default (`resize: pad`): the whole image is scaled so its long side is S and
centred on an S x S canvas filled with `pad_value`. A centre crop of the short side (the usual
`Resize(224)`) would cut away exactly what several FashionAI keys are about: hems (skirt/coat/pant
length) at the bottom and sleeves at the sides. `squish` keeps everything too but distorts the aspect.

A cache file is keyed by the source: the image paths, each file's size and mtime, the optional crop
boxes, S, the resize mode and the fill, so a changed image or a different crop never reads stale pixels.
Unreadable images are recorded in the cache's metadata (and re-reported on every reuse), so a bad file is
decoded once too. A request for a subset of a cache's images (predict's out-of-fold photos of one fold, which
the training cache already holds) reads that cache's rows instead of decoding them again.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fashiontag.core.digest import cache_key
from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.core.files import atomic_write_json, read_json
from fashiontag.core.progress import track
from fashiontag.core.skips import SkipReport
from fashiontag.data.images import open_rgb

log = logging.getLogger(__name__)

CACHE_VERSION = 1
RESIZE_MODES = ("pad", "squish")
Crop = tuple[float, float, float, float]  # normalised x0, y0, x1, y1


def fit_image(
    img: Image.Image, size: int, resize: str = "pad", pad_value: Sequence[int] | int = 0, crop: Crop | None = None
) -> np.ndarray:
    """Crop (normalised xyxy box, optional) then letterbox or squish `img` to a (size, size, 3) uint8 array."""
    if crop is not None:
        w, h = img.size
        x0, y0, x1, y1 = (max(0.0, min(1.0, float(c))) for c in crop)
        box = (int(round(x0 * w)), int(round(y0 * h)), int(round(x1 * w)), int(round(y1 * h)))
        if box[2] - box[0] >= 1 and box[3] - box[1] >= 1:  # a degenerate box keeps the whole image
            img = img.crop(box)
    if resize == "pad":
        fill = tuple(pad_value) if isinstance(pad_value, Sequence) else (pad_value,) * 3
        out = ImageOps.pad(img, (size, size), method=Image.Resampling.BILINEAR, color=fill)
    elif resize == "squish":
        out = img.resize((size, size), Image.Resampling.BILINEAR)
    else:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    return np.array(out, dtype=np.uint8)  # a writable copy (torch refuses read-only buffers)


@dataclass
class ImageCache:
    """A built cache: row i holds paths[i] (rows of unreadable images stay zero and `ok[i]` is False)."""

    path: Path
    size: int
    paths: list[str]
    ok: np.ndarray
    bad: dict[int, str] = field(default_factory=dict)
    _array: np.ndarray | None = field(default=None, repr=False)
    rows: np.ndarray | None = None  # a view of a larger cache: paths[i] is row rows[i] of its file

    def __len__(self) -> int:
        return len(self.paths)

    def row(self, i: int) -> np.ndarray:
        """The (S, S, 3) uint8 pixels of paths[i] (a read-only memmap slice)."""
        return self.array[i if self.rows is None else int(self.rows[i])]

    @property
    def array(self) -> np.ndarray:
        """The (N, S, S, 3) uint8 memmap, opened read-only on first use (in each worker process)."""
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __getstate__(self) -> dict:
        # A memmap pickles as a full copy; workers reopen the file instead.
        state = dict(self.__dict__)
        state["_array"] = None
        return state


def identities(paths: Sequence[str | Path], crops: Sequence[Crop | None] | None) -> list[str]:
    """One line per image naming what its cached pixels depend on: absolute path, file size + mtime (not
    content), crop box."""
    out = []
    for i, p in enumerate(paths):
        try:
            st = os.stat(p)
            ident = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            ident = "missing"
        crop = None if crops is None or crops[i] is None else [round(float(c), 6) for c in crops[i]]
        out.append(f"{os.path.abspath(p)}|{ident}|{crop}")
    return out


def cache_digest(ids: list[str], size: int, resize: str, pad_value) -> str:
    """Hash of everything the cached pixels depend on: the images' `identities`, S, resize mode and fill."""
    return cache_key([CACHE_VERSION, int(size), resize, pad_value], lines=ids)


def _superset_view(cache_dir: Path, paths: list[str], ids: list[str], size: int, resize: str, pad_value,
                   skips: SkipReport, lines: list) -> ImageCache | None:
    """A view of an existing cache (in cache_dir or one folder below) that holds every requested image with
    the same identity, size, resize mode and fill; None when there is none."""
    for meta_path in sorted([*cache_dir.glob(f"*_{size}px_*.json"), *cache_dir.glob(f"*/*_{size}px_*.json")]):
        try:
            meta = read_json(meta_path)
        except (OSError, ValueError):
            continue
        if (not isinstance(meta, dict) or "ids" not in meta or meta.get("version") != CACHE_VERSION
                or meta.get("size") != size or meta.get("resize") != resize or meta.get("pad_value") != pad_value
                or meta.get("n", 0) < len(paths) or not meta_path.with_suffix(".npy").exists()):
            continue
        where = {line: r for r, line in enumerate(meta["ids"])}
        if not all(line in where for line in ids):
            continue
        rows = np.array([where[line] for line in ids], dtype=np.int64)
        their_bad = {int(k): v for k, v in meta.get("bad", {}).items()}
        bad = {i: their_bad[int(r)] for i, r in enumerate(rows) if int(r) in their_bad}
        _report_bad(bad, paths, lines, skips)
        log.info("image cache reused: %d of the %d images in %s", len(paths), meta["n"], meta_path.with_suffix(".npy"))
        view = _make(meta_path.with_suffix(".npy"), size, paths, bad)
        view.rows = rows
        return view
    return None


def _decode_into(
    out: np.ndarray, i: int, path: str, size: int, resize: str, pad_value, crop: Crop | None, line: int | None
) -> str | None:
    """Decode image i into row i; return the reason it is unreadable (or None)."""
    try:
        out[i] = fit_image(open_rgb(path, line), size, resize, pad_value, crop)
    except DataError as err:
        return err.reason
    return None


def build_cache(
    paths: Sequence[str | Path],
    size: int,
    cache_dir: str | Path,
    crops: Sequence[Crop | None] | None = None,
    *,
    name: str = "images",
    resize: str = "pad",
    pad_value: Sequence[int] | int = (124, 116, 104),
    workers: int = 2,
    skips: SkipReport | None = None,
    lines: Sequence[int | None] | None = None,
) -> ImageCache:
    """Decode `paths` once into `cache_dir/<name>_<size>px_<digest>.npy` (or reuse a matching cache).

    crops: one normalised (x0, y0, x1, y1) box or None per image (person-crop mode), or None for all.
    skips: with `skips.skip` unreadable images are recorded there (file, line, reason) and their rows
    marked not ok; otherwise (or with skips=None) the first unreadable image raises DataError naming it
    (and `lines[i]`, its label.csv line, when given).
    """
    paths = [str(p) for p in paths]
    if crops is not None and len(crops) != len(paths):
        raise ValueError(f"crops has {len(crops)} boxes for {len(paths)} images")
    if resize not in RESIZE_MODES:
        raise ValueError(f"cache resize must be one of {RESIZE_MODES}, got {resize!r}")
    pad_value = list(pad_value) if isinstance(pad_value, Sequence) else int(pad_value)
    skips = skips if skips is not None else SkipReport(skip=False)
    lines = list(lines) if lines is not None else [None] * len(paths)
    ids = identities(paths, crops)
    digest = cache_digest(ids, size, resize, pad_value)
    cache_dir = Path(cache_dir)
    npy = cache_dir / f"{name}_{size}px_{digest[:16]}.npy"
    meta_path = npy.with_suffix(".json")

    if npy.exists() and meta_path.exists():
        meta = read_json(meta_path)
        if meta.get("digest") == digest:
            bad = {int(k): v for k, v in meta.get("bad", {}).items()}
            _report_bad(bad, paths, lines, skips)
            log.info("image cache reused: %s (%d images, %d px)", npy, len(paths), size)
            return _make(npy, size, paths, bad)
    if cache_dir.is_dir():
        view = _superset_view(cache_dir, paths, ids, size, resize, pad_value, skips, lines)
        if view is not None:
            return view

    check_room(cache_dir, len(paths), size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{npy.stem}.", suffix=".npy.tmp", dir=cache_dir)
    os.close(fd)
    bad: dict[int, str] = {}
    try:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))
        log.info("building image cache %s: %d images at %d px (%d threads)", npy.name, len(paths), size, workers)
        # PIL releases the GIL while decoding and resizing, so threads scale without pickling pixels.
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            jobs = [
                pool.submit(_decode_into, arr, i, p, size, resize, pad_value,
                            None if crops is None else crops[i], lines[i])
                for i, p in enumerate(paths)
            ]
            for i, job in enumerate(track(jobs, f"image cache {npy.name}", unit="img")):
                reason = job.result()
                if reason is not None:
                    if not skips.skip:  # strict: stop at the first bad image, naming it
                        for j in jobs:
                            j.cancel()
                        raise DataError(paths[i], reason, lines[i])
                    bad[i] = reason
        arr.flush()
        del arr
        os.replace(tmp, npy)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    atomic_write_json(meta_path, {
        "version": CACHE_VERSION, "digest": digest, "size": size, "n": len(paths), "resize": resize,
        "pad_value": pad_value, "bad": {str(k): v for k, v in bad.items()}, "paths": paths, "ids": ids,
    })
    _report_bad(bad, paths, lines, skips)
    return _make(npy, size, paths, bad)


def cache_bytes(n: int, size: int) -> int:
    """Bytes of a cache of n images at size x size: N x S x S x 3 uint8 (plus the .npy header)."""
    return n * size * size * 3 + 128


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def check_room(cache_dir: Path, n: int, size: int) -> None:
    """Log the cache's size; refuse (one line) when the disk holding `cache_dir` cannot take it plus a margin
    (10% or 256 MiB, whichever is larger: checkpoints, logs and features still need room). FashionAI's
    ~80k training images at 512 px make a 63 GB cache."""
    need = cache_bytes(n, size)
    margin = max(need // 10, 256 * 2**20)
    where = Path(cache_dir).absolute()
    while not where.exists() and where != where.parent:  # the first folder that exists holds the disk
        where = where.parent
    free = shutil.disk_usage(where).free
    log.info("image cache: %d images x %d x %d x 3 bytes = %s in %s (%s free)", n, size, size, _gib(need),
             cache_dir, _gib(free))
    if free < need + margin:
        raise FashiontagError(f"{cache_dir}: the image cache needs {_gib(need)} ({n} images x {size} x {size} x 3 "
                              f"bytes) plus a {_gib(margin)} margin, but the disk has {_gib(free)} free; free some "
                              "space, set cache.dir to a larger disk, or lower cache.size")


def _make(npy: Path, size: int, paths: list[str], bad: dict[int, str]) -> ImageCache:
    ok = np.ones(len(paths), dtype=bool)
    ok[list(bad)] = False
    return ImageCache(npy, size, paths, ok, bad)


def _report_bad(bad: dict[int, str], paths: list[str], lines: list, skips: SkipReport) -> None:
    for i in sorted(bad):
        skips.handle(DataError(paths[i], bad[i], lines[i]))
