"""Fashion-MNIST: read the official idx files and import them into the project's FashionAI layout.

The idx format (LeCun's MNIST format): a big-endian header `0x00 0x00 <dtype> <ndim>`, then `ndim`
uint32 sizes, then the data. Files may be gzipped. Every check names the file: a truncated download
must never become a silently short dataset.

The import writes one key (`fmnist_labels`, the 10 class names in attributes.csv) so that train,
predict, report and submit work unchanged:
    DST/train/Annotations/{label.csv,attributes.csv}, DST/train/Images/fmnist_labels/train_00000.png
    DST/test/Tests/question.csv, DST/test/Annotations/attributes.csv, DST/test/Images/...
    DST/test_answers.csv   (label.csv format: the test labels, for `fashiontag score` only)
"""

from __future__ import annotations

import csv
import gzip
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.core.files import atomic_open
from fashiontag.fashionai.format import (
    LABEL_CSV,
    QUESTION_CSV,
    label_string,
    write_attributes,
    write_labels,
    write_questions,
)

log = logging.getLogger(__name__)

KEY = "fmnist_labels"
CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
IMAGE_SIZE = 28
SPLITS = {"train": "train", "test": "t10k"}  # our split name -> the official file prefix
OFFICIAL_COUNTS = {"train": 60000, "test": 10000}
APT_DIR = Path("/usr/share/datasets/fashion-mnist")
ANSWERS_CSV = "test_answers.csv"
HOW_TO_GET = (
    "get the four idx files either with `apt-get install dataset-fashion-mnist` (they land in "
    f"{APT_DIR}) or by downloading train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
    "https://github.com/zalandoresearch/fashion-mnist (data/fashion) into a directory, and pass that directory "
    "(`fashiontag import-idx DIR DST`, or `--set fmnist.idx_dir=DIR` for `fashiontag fmnist`)"
)

# idx type byte -> numpy big-endian dtype
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise DataError(path, f"cannot decompress (truncated or corrupt download?): {exc}") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (raw or .gz) into an array; the header and the byte count are validated."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(path, f"too short for an idx header ({len(raw)} bytes)")
    zero1, zero2, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 != 0 or zero2 != 0 or code not in _DTYPES or ndim == 0:
        raise DataError(path, f"not an idx file: bad magic number {raw[:4].hex()}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(path, f"truncated idx header: {ndim} dimensions need {header} bytes, file has {len(raw)}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header
    if actual != expected:
        kind = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(path, f"idx data {kind}: dimensions {dims} need {expected} bytes, found {actual}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def find_idx_file(directory: Path, stem: str) -> Path:
    """`train-images-idx3-ubyte` -> the .gz or the unpacked file in `directory`."""
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise FashiontagError(f"{directory}: no {stem}(.gz) found; {HOW_TO_GET}")


@dataclass
class Split:
    images: np.ndarray  # (n, 28, 28) uint8
    labels: np.ndarray  # (n,) int64 in 0..9


def load_split(directory: str | Path, split: str) -> Split:
    """Read and cross-check one split's image and label files."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FashiontagError(f"Fashion-MNIST directory not found: {directory}; {HOW_TO_GET}")
    prefix = SPLITS[split]
    img_path = find_idx_file(directory, f"{prefix}-images-idx3-ubyte")
    lab_path = find_idx_file(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or images.dtype != np.uint8:
        raise DataError(img_path, f"expected uint8 images of shape (n, 28, 28), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(lab_path, f"expected a 1-D uint8 label vector, got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DataError(lab_path, f"{len(labels)} labels for {len(images)} images in {img_path.name}")
    if len(labels) and labels.max() >= len(CLASSES):
        bad = int(np.argmax(labels >= len(CLASSES)))
        raise DataError(lab_path, f"label {labels[bad]} at item {bad} is outside 0..{len(CLASSES) - 1}")
    if len(images) != OFFICIAL_COUNTS[split]:
        log.warning("%s: %d items, the official %s split has %d", img_path, len(images), split,
                    OFFICIAL_COUNTS[split])
    return Split(images, labels.astype(np.int64))


def _write_images(root: Path, split: str, images: np.ndarray) -> list[str]:
    """PNG (lossless: the idx pixels are the data) under Images/<key>/; returns the relative paths."""
    folder = root / "Images" / KEY
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, pixels in enumerate(images):
        rel = f"Images/{KEY}/{split}_{i:05d}.png"
        Image.fromarray(pixels, mode="L").save(root / rel)
        names.append(rel)
    return names


def _label_table(names: list[str], labels: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "image": names,
        "key": KEY,
        "label": [label_string(int(y), len(CLASSES)) for y in labels],
    })


def import_idx(src: str | Path, dst: str | Path, limit: int | None = None,
               test_limit: int | None = None, force: bool = False) -> dict:
    """Import the idx files in `src` into `dst` (see the module doc). Returns a summary dict.

    `limit` keeps the first N training images (a quick run), `test_limit` the first N test images
    (defaults to `limit`). Existing imports are refused unless `force`.
    """
    src, dst = Path(src), Path(dst)
    train_root, test_root = dst / "train", dst / "test"
    existing = [p for p in (train_root / LABEL_CSV, test_root / QUESTION_CSV, dst / ANSWERS_CSV) if p.exists()]
    if existing and not force:
        raise FashiontagError(f"{existing[0]} already exists; pass --force to re-import over it")
    test_limit = limit if test_limit is None else test_limit
    splits = {name: load_split(src, name) for name in SPLITS}  # read both before writing anything
    summary: dict = {"src": str(src), "dst": str(dst), "key": KEY}
    attributes = {KEY: CLASSES}
    for name, root, cap in (("train", train_root, limit), ("test", test_root, test_limit)):
        data = splits[name]
        images, labels = data.images[:cap], data.labels[:cap]
        table = _label_table(_write_images(root, name, images), labels)
        # Images first, CSVs last (each atomic): a crash leaves no label file naming missing images.
        write_attributes(root, attributes)
        if name == "train":
            write_labels(root, table)
        else:
            write_questions(root, table)
            write_labels_to(dst / ANSWERS_CSV, table)
        summary[name] = {"n": len(table), "per_class": np.bincount(labels, minlength=len(CLASSES)).tolist()}
        log.info("imported %d %s images into %s", len(table), name, root)
    return summary


def write_labels_to(path: Path, table: pd.DataFrame) -> Path:
    """A label.csv-format file (no header: image,key,label) at an arbitrary path, written atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(table[["image", "key", "label"]].itertuples(index=False))
    return path
