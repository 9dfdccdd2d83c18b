"""The FashionAI layout: Annotations/label.csv, Tests/question.csv, Annotations/attributes.csv.

label.csv rows are `Images/<key>/<name>.jpg,<key>,<label string>` (no header); the label string has one
character per value: y (the value), n (not), m (maybe). question.csv has `?` as the third column.
Tables come back as DataFrames with a `line` column (1-based) so errors can name the line.

Every file is read through core.files (UTF-8 with or without a BOM, UTF-16 with one; other bytes name their
line); every key must be a safe file name (keys.check_key: it becomes a folder) and every image path must
stay inside its root (core.paths), on reading and on writing.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fashiontag.core.errors import DataError
from fashiontag.core.files import atomic_open, read_csv_rows
from fashiontag.core.paths import inside_root, relative_problem
from fashiontag.core.skips import SkipReport
from fashiontag.fashionai.keys import OFFICIAL_KEYS, check_key, resolve_keys

log = logging.getLogger(__name__)

LABEL_CSV = Path("Annotations") / "label.csv"
ATTRIBUTES_CSV = Path("Annotations") / "attributes.csv"
QUESTION_CSV = Path("Tests") / "question.csv"
LABEL_CHARS = set("ynm")

LABEL_COLUMNS = ["image", "key", "label", "y", "line"]
QUESTION_COLUMNS = ["image", "key", "line"]


def read_attributes(root: str | Path) -> dict[str, list[str]]:
    """Official keys plus those in Annotations/attributes.csv (key,index,value); the file wins."""
    table = {k: list(v) for k, v in OFFICIAL_KEYS.items()}
    path = Path(root) / ATTRIBUTES_CSV
    if not path.exists():
        return table
    custom: dict[str, dict[int, str]] = {}
    for n, (lineno, row) in enumerate(read_csv_rows(path)):
        cells = [c.strip() for c in row]
        if not any(cells) or (n == 0 and cells[:3] == ["key", "index", "value"]):
            continue
        if len(cells) != 3:
            raise DataError(path, f"expected 3 columns (key,index,value), got {len(cells)}", lineno)
        key, index, value = cells
        check_key(key, path, lineno)
        try:
            idx = int(index)
        except ValueError:
            raise DataError(path, f"index {index!r} is not an integer", lineno) from None
        if idx in custom.setdefault(key, {}):
            raise DataError(path, f"duplicate index {idx} for key {key}", lineno)
        custom[key][idx] = value
    for key, values in custom.items():
        if sorted(values) != list(range(len(values))):
            raise DataError(path, f"indices for {key} must be 0..{len(values) - 1}, got {sorted(values)}")
        table[key] = [values[i] for i in range(len(values))]
    return table


def write_attributes(root: str | Path, attributes: dict[str, list[str]]) -> Path:
    """Write the non-official keys (or any whose values differ from the official ones)."""
    path = Path(root) / ATTRIBUTES_CSV
    for key in attributes:
        check_key(key, path)
    rows = [
        (key, i, value)
        for key, values in attributes.items()
        if OFFICIAL_KEYS.get(key) != values
        for i, value in enumerate(values)
    ]
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["key", "index", "value"])
        writer.writerows(rows)
    return path


def parse_label(label: str, n_values: int, path: Path, line: int) -> int:
    """Validate a label string against its key's value count and return the index of its 'y'."""
    if len(label) != n_values:
        raise DataError(path, f"label {label!r} has {len(label)} characters; the key has {n_values} values", line)
    bad = set(label) - LABEL_CHARS
    if bad:
        raise DataError(path, f"label {label!r} has characters other than y/n/m: {''.join(sorted(bad))}", line)
    n_y = label.count("y")
    if n_y != 1:
        raise DataError(path, f"label {label!r} must have exactly one 'y', has {n_y}", line)
    return label.index("y")


def _read_rows(path: Path, third: str) -> list[tuple[int, list[str]]]:
    rows = []
    for lineno, row in read_csv_rows(path):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 3:
            raise DataError(path, f"expected 3 columns (image,key,{third}), got {len(row)}", lineno)
        rows.append((lineno, [c.strip() for c in row]))
    if not rows:
        # An empty table would pass every check and train or score on nothing.
        raise DataError(path, "has no rows (the file is empty)")
    return rows


def _check_ids(image: str, key: str, path: Path, line: int) -> None:
    """The image path stays inside the root and the key is a safe folder name."""
    problem = relative_problem(image)
    if problem is not None:
        raise DataError(path, f"image path {image!r} {problem}", line)
    check_key(key, path, line)


def _check_duplicate(seen: dict[tuple[str, str], int], image: str, key: str, path: Path, line: int) -> None:
    first = seen.get((image, key))
    if first is not None:
        raise DataError(path, f"duplicate row for {image} ({key}); first seen at line {first}", line)
    seen[(image, key)] = line


def read_labels(
    root: str | Path,
    attributes: dict[str, list[str]] | None = None,
    skips: SkipReport | None = None,
    csv_path: str | Path | None = None,
) -> pd.DataFrame:
    """Annotations/label.csv -> DataFrame[image, key, label, y, line]; bad rows raise or are skipped.

    `csv_path` reads a label-format file kept elsewhere (e.g. the answers file a submission is scored on).
    """
    root = Path(root)
    path = Path(csv_path) if csv_path is not None else root / LABEL_CSV
    attributes = attributes if attributes is not None else read_attributes(root)
    skips = skips if skips is not None else SkipReport(skip=False)
    records, seen = [], {}
    for lineno, (image, key, label) in _read_rows(path, "label"):
        try:
            _check_ids(image, key, path, lineno)
            if key not in attributes:
                raise DataError(
                    path, f"unknown attribute key {key!r}: not official and not in {ATTRIBUTES_CSV}", lineno
                )
            y = parse_label(label, len(attributes[key]), path, lineno)
            _check_duplicate(seen, image, key, path, lineno)
        except DataError as err:
            skips.handle(err)
            continue
        records.append((image, key, label, y, lineno))
    return pd.DataFrame.from_records(records, columns=LABEL_COLUMNS)


def read_questions(
    root: str | Path,
    attributes: dict[str, list[str]] | None = None,
    skips: SkipReport | None = None,
    csv_path: str | Path | None = None,
) -> pd.DataFrame:
    """Tests/question.csv -> DataFrame[image, key, line], in file order (the submission keeps it).

    `csv_path` reads a question-format file kept elsewhere than root/Tests/question.csv.
    """
    root = Path(root)
    path = Path(csv_path) if csv_path is not None else root / QUESTION_CSV
    attributes = attributes if attributes is not None else read_attributes(root)
    skips = skips if skips is not None else SkipReport(skip=False)
    records, seen = [], {}
    for lineno, (image, key, mark) in _read_rows(path, "?"):
        try:
            _check_ids(image, key, path, lineno)
            if key not in attributes:
                raise DataError(path, f"unknown attribute key {key!r}", lineno)
            if mark != "?":
                raise DataError(path, f"third column must be '?', got {mark!r}", lineno)
            _check_duplicate(seen, image, key, path, lineno)
        except DataError as err:
            skips.handle(err)
            continue
        records.append((image, key, lineno))
    return pd.DataFrame.from_records(records, columns=QUESTION_COLUMNS)


def _check_table(table: pd.DataFrame, path: Path) -> None:
    """Writers refuse what readers would refuse, so no command ever writes an unsafe key or image path."""
    for line, (image, key) in enumerate(table[["image", "key"]].itertuples(index=False, name=None), start=1):
        _check_ids(str(image), str(key), path, line)


def write_labels(root: str | Path, labels: pd.DataFrame) -> Path:
    path = Path(root) / LABEL_CSV
    _check_table(labels, path)
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerows(labels[["image", "key", "label"]].itertuples(index=False, name=None))
    return path


def write_questions(root: str | Path, questions: pd.DataFrame) -> Path:
    path = Path(root) / QUESTION_CSV
    _check_table(questions, path)
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerows((img, key, "?") for img, key in questions[["image", "key"]].itertuples(index=False))
    return path


def label_string(y: int, n_values: int, maybe: tuple[int, ...] = ()) -> str:
    chars = ["n"] * n_values
    for m in maybe:
        chars[m] = "m"
    chars[y] = "y"
    return "".join(chars)


@dataclass
class Dataset:
    """A FashionAI-layout root: its attribute table and (if labelled) its label table."""

    root: Path
    attributes: dict[str, list[str]]
    labels: pd.DataFrame = field(repr=False)

    @property
    def name(self) -> str:
        return self.root.resolve().name

    @property
    def keys(self) -> list[str]:
        """Keys present in label.csv, in first-appearance order."""
        return list(dict.fromkeys(self.labels["key"]))

    def select_keys(self, spec: str | list[str] | None) -> list[str]:
        present = {k: self.attributes[k] for k in self.keys}
        return resolve_keys(spec, present)

    def for_key(self, key: str) -> pd.DataFrame:
        return self.labels[self.labels["key"] == key].reset_index(drop=True)

    def image_path(self, image: str) -> Path:
        return inside_root(self.root, image, self.root / LABEL_CSV)


def load_dataset(root: str | Path, skips: SkipReport | None = None) -> Dataset:
    root = Path(root)
    if not (root / LABEL_CSV).exists():
        raise DataError(root / LABEL_CSV, "no label.csv: is this a FashionAI training root? (see README)")
    attributes = read_attributes(root)
    return Dataset(root, attributes, read_labels(root, attributes, skips))
