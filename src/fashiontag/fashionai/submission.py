"""FashionAI submission files: the exact writer, a reader and a validator.

A submission is the test's question.csv with `?` replaced by the key's probabilities in value order,
each with 4 decimals, joined by ';' (e.g. `Images/x/a.jpg,skirt_length_labels,0.9610;0.0150;...`).
No header. The writer renormalises after rounding so every row sums to exactly 1.0000.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from fashiontag.core.errors import DataError
from fashiontag.core.files import atomic_open, read_csv_rows
from fashiontag.fashionai.format import read_questions
from fashiontag.fashionai.probs import prob_columns, probs_of

log = logging.getLogger(__name__)

DECIMALS = 4
UNITS = 10**DECIMALS
SUM_TOLERANCE = 1e-3
MAX_LISTED = 20  # problems of one kind listed before "... and N more"
# A plain decimal number (optionally with an exponent); Python's float() also takes '0.1_0' (= 0.1), which
# a FashionAI scorer does not. nan/inf pass here to be refused as non-finite below.
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def format_probs(probs: np.ndarray) -> list[str]:
    """(rows, n) probabilities -> '0.9610;0.0150;...' strings summing to exactly 1 at 4 decimals.

    Rounding is done in integer units of 1e-4 and the rounding residual goes to each row's largest
    value, so the file never carries float noise such as 0.30000000000000004.
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, None)
    p = p / p.sum(axis=1, keepdims=True)
    units = np.rint(p * UNITS).astype(np.int64)
    rows = np.arange(len(units))
    units[rows, units.argmax(axis=1)] += UNITS - units.sum(axis=1)
    return [";".join(f"{u // UNITS}.{u % UNITS:0{DECIMALS}d}" for u in row) for row in units.tolist()]


def _examples(frame: pd.DataFrame, k: int = 3) -> str:
    return ", ".join(f"{r.image} ({r.key})" for r in frame.head(k).itertuples())


def _check_probs(probs: np.ndarray, part: pd.DataFrame, key: str, path: Path) -> None:
    """Refuse things that are not probabilities (NaN, negative, > 1); renormalise mild drift with a note."""
    bad = ~np.isfinite(probs).all(axis=1) | (probs < -1e-6).any(axis=1) | (probs > 1 + 1e-6).any(axis=1)
    if bad.any():
        raise DataError(path, f"{key}: {int(bad.sum())} rows have missing, non-finite or out-of-range "
                              f"probabilities (e.g. {_examples(part[bad])})")
    drift = np.abs(probs.sum(axis=1) - 1.0) > SUM_TOLERANCE
    if drift.any():
        log.warning("%s: %d rows did not sum to 1 and were renormalised", key, int(drift.sum()))


def write_submission(
    path: str | Path, questions: pd.DataFrame, probs_by_row: pd.DataFrame, attributes: dict[str, list[str]]
) -> Path:
    """Write the FashionAI CSV for `questions` (rows kept in order) from a probability table.

    `probs_by_row` has image, key, p_0.. (NaN beyond a key's value count is fine). A question without a
    prediction is a DataError listing the first few and the count; nothing is written then.
    """
    path = Path(path)
    if probs_by_row.duplicated(["image", "key"]).any():
        dup = probs_by_row[probs_by_row.duplicated(["image", "key"])]
        raise DataError(path, f"{len(dup)} duplicate prediction rows (e.g. {_examples(dup)})")
    merged = questions[["image", "key"]].merge(
        probs_by_row, on=["image", "key"], how="left", indicator=True, validate="many_to_one"
    )
    absent = merged["_merge"] == "left_only"
    if absent.any():
        raise DataError(path, f"cannot write: {int(absent.sum())} of {len(questions)} question rows have no "
                              f"prediction (e.g. {_examples(merged[absent])})")
    text = np.empty(len(merged), dtype=object)
    for key in dict.fromkeys(merged["key"]):
        if key not in attributes:
            raise DataError(path, f"unknown attribute key {key!r} in the questions")
        mask = (merged["key"] == key).to_numpy()
        n = len(attributes[key])
        missing_cols = [c for c in prob_columns(n) if c not in merged.columns]
        if missing_cols:
            raise DataError(path, f"{key}: predictions lack probability columns {missing_cols}")
        probs = probs_of(merged[mask], n)
        _check_probs(probs, merged[mask], key, path)
        text[mask] = format_probs(probs)
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerows(zip(merged["image"], merged["key"], text, strict=True))
    log.info("wrote %d rows to %s", len(merged), path)
    return path


def _parse_row(row: list[str], line: int, attributes: dict[str, list[str]], path: Path) -> tuple[str, str, list[float]]:
    """One submission row -> (image, key, probabilities); any problem is a DataError naming the line."""
    if len(row) != 3:
        raise DataError(path, f"expected 3 columns (image,key,probabilities), got {len(row)}", line)
    image, key, text = (c.strip() for c in row)
    if key not in attributes:
        raise DataError(path, f"unknown attribute key {key!r}", line)
    parts = text.split(";")
    n = len(attributes[key])
    if len(parts) != n:
        raise DataError(path, f"{key} has {n} values but the row has {len(parts)} probabilities", line)
    values = []
    for part in (p.strip() for p in parts):
        if not NUMBER.fullmatch(part):
            raise DataError(path, f"{part!r} is not a number", line)
        values.append(float(part))
    if not all(math.isfinite(v) for v in values):
        raise DataError(path, f"non-finite probability in {text!r}", line)
    if any(v < 0 or v > 1 for v in values):
        raise DataError(path, f"probability outside [0, 1] in {text!r}", line)
    total = sum(values)
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise DataError(path, f"probabilities sum to {total:.6f}, not 1 (tolerance {SUM_TOLERANCE})", line)
    return image, key, values


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    for line, row in read_csv_rows(path, not_found="submission file not found"):
        if row and any(c.strip() for c in row):
            yield line, row


def read_submission(path: str | Path, attributes: dict[str, list[str]]) -> pd.DataFrame:
    """A submission -> DataFrame[image, key, line, p_0..p_{m-1}] with m the largest value count present.

    Rows of keys with fewer values are padded with NaN (the probs.py convention); the first bad row
    raises a DataError naming the line.
    """
    path = Path(path)
    records, probs = [], []
    for line, row in _rows(path):
        image, key, values = _parse_row(row, line, attributes, path)
        records.append((image, key, line))
        probs.append(values)
    width = max((len(v) for v in probs), default=0)
    matrix = np.full((len(probs), width), np.nan)
    for i, values in enumerate(probs):
        matrix[i, : len(values)] = values
    if not records:
        raise DataError(path, "has no rows (the file is empty)")
    out = pd.DataFrame.from_records(records, columns=["image", "key", "line"])
    for i, col in enumerate(prob_columns(width)):
        out[col] = matrix[:, i]
    return out


def _listed(problems: list[str], found: list[str], what: str) -> None:
    problems.extend(found[:MAX_LISTED])
    if len(found) > MAX_LISTED:
        problems.append(f"... and {len(found) - MAX_LISTED} more {what}")


def validate_submission(
    sub_path: str | Path, question_csv_path: str | Path, attributes: dict[str, list[str]]
) -> list[str]:
    """Every problem of a submission against its question.csv, each naming the line; [] means valid.

    Checks: parseable rows, the key's number of values, finite probabilities in [0, 1] summing to 1
    within 1e-3, no duplicates, and exactly the question rows in the question order.
    """
    sub_path, question_csv_path = Path(sub_path), Path(question_csv_path)
    questions = read_questions(question_csv_path.parent, attributes, csv_path=question_csv_path)
    try:
        rows = list(_rows(sub_path))
    except DataError as err:  # missing, a folder, not text: the one problem there is
        return [str(err)]
    row_problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    order: list[tuple[str, str, int]] = []
    for line, row in rows:
        if len(row) >= 2:
            ident = (row[0].strip(), row[1].strip())
            if ident in seen:
                row_problems.append(f"{sub_path}:{line}: duplicate row for {ident[0]} ({ident[1]}); "
                                    f"first at line {seen[ident]}")
                continue
            seen[ident] = line
            order.append((*ident, line))
        try:
            _parse_row(row, line, attributes, sub_path)
        except DataError as err:
            row_problems.append(str(err))
    problems: list[str] = []
    _listed(problems, row_problems, "bad rows")
    expected = list(zip(questions["image"], questions["key"], strict=True))
    missing = [q for q in expected if q not in seen]
    if missing:
        examples = ", ".join(f"{img} ({key})" for img, key in missing[:3])
        problems.append(f"{sub_path}: {len(missing)} of {len(expected)} question rows are missing (e.g. {examples})")
    wanted = set(expected)
    extra = [f"{sub_path}:{line}: {img} ({key}) is not in {question_csv_path}"
             for img, key, line in order if (img, key) not in wanted]
    _listed(problems, extra, "rows not in the questions")
    if not missing and not extra:
        shuffled = [f"{sub_path}:{line}: expected {q[0]} ({q[1]}) here (question order), got {img} ({key})"
                    for q, (img, key, line) in zip(expected, order, strict=False) if q != (img, key)]
        _listed(problems, shuffled, "rows out of question order")
    return problems


def score_submission(sub_path: str | Path, answers_csv: str | Path, attributes: dict[str, list[str]]) -> pd.DataFrame:
    """Per-key and overall scores of a submission against an answers file (a label.csv)."""
    from fashiontag.fashionai.format import read_labels
    from fashiontag.fashionai.metric import score_tables

    answers = read_labels(Path(answers_csv).parent, attributes, csv_path=answers_csv)
    submission = read_submission(sub_path, attributes)
    return score_tables(submission, answers, attributes, source=str(sub_path))
