"""Import class-folder datasets (SRC/<class>/*.jpg) into the FashionAI layout with one key.

    DST/Images/<key>/<class>_<stem>.jpg       labelled; unlabelled imports drop the class: <stem>.jpg
    DST/Annotations/label.csv                 labelled import
    DST/Tests/question.csv                    --unlabelled import
    DST/Annotations/answers.csv               --unlabelled from class folders whose names are values:
                                              the hidden labels, label.csv format, for `fashiontag score`
    DST/Annotations/attributes.csv            value order = sorted class names (or --values-from ROOT)
    DST/import_skips.csv                      --skip-bad: every skipped file and why

Every image is fully decoded first (nothing is written if one fails in strict mode). RGB JPEGs are
copied byte-exact (or hard-linked); anything else (CMYK, grayscale, alpha, PNG...) is written as an
RGB JPEG at quality 95 so the rest of the pipeline only ever sees clean JPEGs.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.core.files import atomic_open, atomic_write_csv, file_md5, make_dirs, remove_file
from fashiontag.core.skips import SkipReport
from fashiontag.data.images import is_image_file, open_rgb
from fashiontag.fashionai.format import (
    LABEL_CSV,
    QUESTION_CSV,
    label_string,
    read_attributes,
    write_attributes,
    write_labels,
    write_questions,
)
from fashiontag.fashionai.keys import OFFICIAL_KEYS, SUFFIX, check_key

log = logging.getLogger(__name__)

ANSWERS_CSV = Path("Annotations") / "answers.csv"
SKIPS_CSV = "import_skips.csv"
JPEG_QUALITY = 95
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ImportResult:
    root: Path
    key: str
    values: list[str]
    n_images: int
    n_converted: int
    n_skipped: int
    labelled: bool


@dataclass
class _Item:
    path: Path
    cls: str | None
    convert: bool = False
    skipped: bool = False
    name: str = ""


def normalise_key(name: str) -> str:
    """`garment_type` -> `garment_type_labels`; keys become folder names, so only safe characters."""
    check_key(name)
    return check_key(name if name.endswith(SUFFIX) else name + SUFFIX)


def _scan(src: Path, labelled: bool) -> list[_Item]:
    if not src.is_dir():
        raise DataError(src, "source is not a folder")
    loose = sorted(p for p in src.iterdir() if is_image_file(p))
    if loose and labelled:
        raise DataError(src, f"{len(loose)} images lie directly in the folder; a labelled import needs "
                             "class folders SRC/<class>/*.jpg (or pass --unlabelled)")
    items = [_Item(p, None) for p in loose]
    for folder in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.iterdir() if is_image_file(p))
        if any(p.is_dir() for p in folder.iterdir()):
            log.warning("%s: subfolders are not imported (only %s/*.jpg)", folder, folder.name)
        if not files:
            log.warning("%s: no images; not a class", folder)
        items.extend(_Item(p, folder.name) for p in files)
    if not items:
        raise DataError(src, "no images found (expected SRC/<class>/*.jpg or, unlabelled, SRC/*.jpg)")
    return items


def _inspect(path: Path) -> bool | DataError:
    """Decode fully; True if the file must be converted (anything but an RGB JPEG)."""
    try:
        open_rgb(path)
        with Image.open(path) as img:  # header only: what the file is, before conversion
            return not (img.format == "JPEG" and img.mode == "RGB")
    except DataError as err:
        return err


def _assign_names(items: list[_Item], labelled: bool) -> None:
    """<class>_<stem>.jpg (labelled) or <stem>.jpg; a clash gets the file's md5 prefix, then a counter."""
    taken: set[str] = set()
    for item in items:
        stem = _UNSAFE.sub("_", item.path.stem)
        base = f"{_UNSAFE.sub('_', item.cls)}_{stem}" if labelled and item.cls else stem
        name = f"{base}.jpg"
        if name in taken:
            name = f"{base}_{file_md5(item.path)[:8]}.jpg"
        counter = 2
        while name in taken:
            name = f"{base}_{counter}.jpg"
            counter += 1
        taken.add(name)
        item.name = name


def _write_image(item: _Item, target: Path, link: bool) -> bool:
    """Write one image atomically; returns False when a requested hard link fell back to a copy."""
    if item.convert:
        rgb = open_rgb(item.path)
        with atomic_open(target, "wb") as fh:
            rgb.save(fh, format="JPEG", quality=JPEG_QUALITY)
        return True
    if link:
        tmp = target.with_name(f".{target.name}.link")
        try:
            if tmp.exists():
                tmp.unlink()
            os.link(item.path, tmp)
            os.replace(tmp, target)
            return True
        except OSError:
            pass  # another filesystem or no permission: copy instead
    with open(item.path, "rb") as src, atomic_open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return not link


def _values(classes: list[str], key: str, values_from: Path | None, dst: Path) -> list[str]:
    """Value order: --values-from's, else the official order when the folders are official value names,
    else the sorted class names."""
    if values_from is not None:
        table = read_attributes(values_from)
        if key not in table:
            raise DataError(values_from, f"has no attribute key {key!r} to take the value order from")
        return table[key]
    if key in OFFICIAL_KEYS and set(classes) <= set(OFFICIAL_KEYS[key]):
        return OFFICIAL_KEYS[key]
    if classes:
        return sorted(set(classes))
    existing = read_attributes(dst)
    if key in existing:
        return existing[key]
    raise DataError(dst, f"a flat folder has no class names to give {key!r} its values; pass "
                         "--values-from TRAIN_ROOT (the labelled import of the same key)")


def import_folders(
    srcs: list[str | Path],
    dst: str | Path,
    key: str,
    *,
    unlabelled: bool = False,
    link: bool = False,
    skip_bad: bool = False,
    force: bool = False,
    values_from: str | Path | None = None,
    workers: int | None = None,
) -> ImportResult:
    """Import one or more class-folder trees (class names merged) into `dst`; see the module docstring."""
    key = normalise_key(key)
    dst = Path(dst)
    labelled = not unlabelled
    if dst.exists() and not dst.is_dir():
        raise FashiontagError(f"{dst} is a file; DST is the dataset folder to create or fill")
    for existing in (dst / LABEL_CSV, dst / QUESTION_CSV):
        if existing.exists() and not force:
            raise DataError(existing, "the destination already holds a dataset; pass --force to replace it")
    items = [item for src in srcs for item in _scan(Path(src), labelled)]
    classes = [i.cls for i in items if i.cls is not None]
    values = _values(classes, key, Path(values_from) if values_from else None, dst)
    unknown = sorted(set(classes) - set(values))
    if unknown and labelled:
        raise DataError(values_from or dst, f"class folders {unknown} are not values of {key}: {values}")
    answers = bool(classes) and not unknown and unlabelled

    skips = SkipReport(skip=skip_bad)
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # map() yields in input order, so strict mode stops at the first bad file in a stable order.
        for item, outcome in zip(items, pool.map(_inspect, [i.path for i in items]), strict=True):
            if isinstance(outcome, DataError):
                skips.handle(outcome)
                item.skipped = True
            else:
                item.convert = outcome
    kept = [i for i in items if not i.skipped]
    if not kept:
        raise DataError(srcs[0], f"no readable images ({len(skips)} skipped)")
    _assign_names(kept, labelled)
    if unlabelled:
        # Question order must not follow the class folders (that would hint at the answers).
        kept.sort(key=lambda i: i.name)

    image_dir = make_dirs(dst / "Images" / key)
    linked_all = True
    for item in kept:
        linked_all &= _write_image(item, image_dir / item.name, link)
    if link and not linked_all:
        log.warning("hard links were not possible for some files (another filesystem?); they were copied")

    table = pd.DataFrame({
        "image": [f"Images/{key}/{i.name}" for i in kept],
        "key": key,
        "label": [label_string(values.index(i.cls), len(values)) if i.cls in values else "?" for i in kept],
    })
    attributes = read_attributes(dst)
    attributes[key] = list(values)
    write_attributes(dst, attributes)
    if labelled:
        write_labels(dst, table)
    else:
        write_questions(dst, table)
        if answers:
            atomic_write_csv(dst / ANSWERS_CSV, table, header=False, lineterminator="\n")
        else:
            remove_file(dst / ANSWERS_CSV)  # never keep answers of a replaced import
    remove_file(dst / SKIPS_CSV)  # a stale report from a replaced import would mislead
    skips.write(dst / SKIPS_CSV)
    n_converted = sum(i.convert for i in kept)
    log.info("imported %d images (%d converted to RGB JPEG, %d skipped) into %s as %s with %d values",
             len(kept), n_converted, len(skips), dst, key, len(values))
    return ImportResult(dst, key, list(values), len(kept), n_converted, len(skips), labelled)
