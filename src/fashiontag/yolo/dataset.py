"""The one YOLO dataset writer: images/{train,val}, labels/{train,val}, bad_boxes.csv, summary.json, data.yaml.

Its callers hand it `Sample`s (an image file and pixel boxes): the annotation converters of the detect
stage (detect/convert_voc.py, detect/convert_dataturks.py) and the tiny person detector's generated
figures (yolo/tiny_detector.py). It checks every box against the image and the class list, splits images
(seeded, 80/20 by default, or as the caller assigns them) and writes the dataset. Bad boxes (unknown
label, zero area, outside the image) are dropped, counted and listed in bad_boxes.csv, never kept
silently; an image left with no valid box is dropped too (it would otherwise teach the detector that
its objects are background) and listed there as well. Only a sample given without any box is kept as
a negative (empty label file) when `keep_negatives` is set.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from pathlib import Path

import pandas as pd
import yaml

from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.core.files import atomic_write_csv, atomic_write_json, atomic_write_text
from fashiontag.data.boxes import Box, Sample
from fashiontag.data.images import open_rgb

log = logging.getLogger(__name__)

# Coordinates may overshoot the image by rounding; more than this (pixels) is a bad box.
EDGE_TOLERANCE = 1.0
BAD_BOXES_CSV = "bad_boxes.csv"
SPLIT_NAMES = ("train", "val")


def _norm(label: str) -> str:
    """Case, punctuation and a plural 's' do not matter: 'T-Shirts' and 'tshirt' are one class."""
    flat = re.sub(r"[^a-z0-9]", "", label.lower())
    return flat[:-1] if flat.endswith("s") and len(flat) > 3 else flat


class ClassMap:
    """Maps annotation labels onto class indices by normalised name (plus `aliases`: spelling -> class)."""

    def __init__(self, classes: list[str], aliases: dict[str, str] | None = None):
        if not classes:
            raise FashiontagError("the class list is empty")
        self.classes = list(classes)
        self._index = {_norm(c): i for i, c in enumerate(self.classes)}
        for alias, target in (aliases or {}).items():
            if _norm(target) in self._index:
                self._index.setdefault(_norm(alias), self._index[_norm(target)])

    def index(self, label: str) -> int | None:
        return self._index.get(_norm(label))


def box_problem(box: Box, width: int, height: int, classes: ClassMap) -> str | None:
    """Why a box is bad, or None for a good one."""
    if classes.index(box.label) is None:
        return f"unknown label {box.label!r}"
    if box.x2 - box.x1 <= 0 or box.y2 - box.y1 <= 0:
        return "zero or negative area"
    t = EDGE_TOLERANCE
    if box.x1 < -t or box.y1 < -t or box.x2 > width + t or box.y2 > height + t:
        return f"outside the {width}x{height} image"
    return None


def yolo_line(cls: int, box: Box, width: int, height: int) -> str:
    """`cls cx cy w h`, normalised to 0..1 (after clipping the tolerated rounding overshoot)."""
    x1, x2 = max(box.x1, 0.0), min(box.x2, float(width))
    y1, y2 = max(box.y1, 0.0), min(box.y2, float(height))
    cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
    return f"{cls} {cx:.6f} {cy:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"


def split_images(n: int, val_fraction: float, seed: int) -> list[str]:
    """Seeded image-level split; at least one val image when there are two or more images."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_val = round(n * val_fraction)
    if n >= 2 and val_fraction > 0:
        n_val = min(max(n_val, 1), n - 1)
    val = set(order[:n_val])
    return ["val" if i in val else "train" for i in range(n)]


def image_size(path: Path, source: str, line: int | None = None) -> tuple[int, int]:
    """The real (width, height) of an image; an unreadable one is a DataError naming the annotation."""
    try:
        return open_rgb(path).size
    except DataError as err:
        raise DataError(source, f"image {path}: {err.reason}", line) from None


def _unique_name(image: Path, taken: set[str]) -> str:
    name, k = image.name, 1
    while name.lower() in taken:
        name = f"{image.stem}_{k}{image.suffix}"
        k += 1
    taken.add(name.lower())
    return name


def prepare_output(out: Path, force: bool) -> None:
    """Refuse to write over an existing dataset unless forced; forced, clear our own folders only."""
    if (out / "data.yaml").exists() and not force:
        raise FashiontagError(f"{out / 'data.yaml'} already exists; pass --force to rebuild the dataset")
    for sub in ("images", "labels"):
        if force and (out / sub).is_dir():
            shutil.rmtree(out / sub)


def write_yolo_dataset(
    samples: list[Sample],
    out: str | Path,
    classes: list[str],
    val_fraction: float = 0.2,
    seed: int = 0,
    force: bool = False,
    bad_images: list[dict] | None = None,
    *,
    aliases: dict[str, str] | None = None,
    splits: list[str] | None = None,
    keep_negatives: bool = False,
) -> dict:
    """Validate boxes, split, copy images, write labels, bad_boxes.csv, summary.json and data.yaml (last).

    `bad_images` are rows (file, line, reason) the converter already rejected; they join the report.
    `splits` ("train"/"val" per sample) replaces the seeded split; `keep_negatives` keeps samples given
    without boxes, with an empty label file. Returns the summary: counts of images per split, boxes per
    class, bad boxes and dropped images.
    """
    out = Path(out)
    if splits is not None and (len(splits) != len(samples) or set(splits) - set(SPLIT_NAMES)):
        raise ValueError(f"splits must name {SPLIT_NAMES} for each of the {len(samples)} samples")
    prepare_output(out, force)
    cmap = ClassMap(classes, aliases)
    report = list(bad_images or [])
    kept: list[tuple[Sample, list[str]]] = []
    kept_splits: list[str] = []
    n_bad = 0
    for i, sample in enumerate(samples):
        lines = []
        for j, box in enumerate(sample.boxes):
            problem = box_problem(box, sample.width, sample.height, cmap)
            if problem is not None:
                n_bad += 1
                report.append({"file": sample.source or str(sample.image), "line": None, "image": str(sample.image),
                               "object": j, "label": box.label, "box": f"{box.x1:g},{box.y1:g},{box.x2:g},{box.y2:g}",
                               "reason": problem})
                continue
            lines.append(yolo_line(cmap.index(box.label), box, sample.width, sample.height))
        if not lines and not (keep_negatives and not sample.boxes):
            report.append({"file": sample.source or str(sample.image), "image": str(sample.image),
                           "reason": "image dropped: no valid box"})
            continue
        kept.append((sample, lines))
        if splits is not None:
            kept_splits.append(splits[i])
    if not kept:
        raise FashiontagError(f"no image with a valid box to write into {out} (see the converter's warnings)")

    splits = kept_splits if splits is not None else split_images(len(kept), val_fraction, seed)
    taken: set[str] = set()
    per_class = [0] * len(classes)
    for (sample, lines), split in zip(kept, splits, strict=True):
        name = _unique_name(sample.image, taken)
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample.image, out / "images" / split / name)
        atomic_write_text(out / "labels" / split / f"{Path(name).stem}.txt", "".join(f"{line}\n" for line in lines))
        for line in lines:
            per_class[int(line.split()[0])] += 1

    columns = ["file", "line", "image", "object", "label", "box", "reason"]
    atomic_write_csv(out / BAD_BOXES_CSV, pd.DataFrame(report, columns=columns))
    summary = {
        "images": {s: splits.count(s) for s in SPLIT_NAMES},
        "boxes_per_class": dict(zip(classes, per_class, strict=True)),
        "bad_boxes": n_bad,
        "dropped_images": sum(1 for r in report if str(r.get("reason", "")).startswith("image dropped")),
        "rejected_inputs": len(bad_images or []),
        "seed": seed,
        "val_fraction": val_fraction,
    }
    atomic_write_json(out / "summary.json", summary)
    data = {"path": str(out.resolve()), "train": "images/train", "val": "images/val",
            "names": dict(enumerate(classes))}
    atomic_write_text(out / "data.yaml", yaml.safe_dump(data, sort_keys=False))
    if report:
        log.warning("%d bad box(es), %d image(s) dropped or rejected; listed in %s", n_bad,
                    len(report) - n_bad, out / BAD_BOXES_CSV)
    log.info("YOLO dataset %s: %d train / %d val images", out / "data.yaml", *summary["images"].values())
    return summary
