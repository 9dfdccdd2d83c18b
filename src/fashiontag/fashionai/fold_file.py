"""The one reader of fold tables: a dataset's folds/<dataset>.csv and every run key's folds.csv.

Both are CSV files of image, key, fold (the dataset file and a training run's copy add y, the label
index the folds were stratified on). Each is checked the same way: the columns are there, folds are
non-negative integers, and no (image, key) appears twice; a problem names the file and line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fashiontag.core.errors import DataError

FOLD_COLUMNS = ["image", "key", "y", "fold"]


def read_fold_file(path: str | Path, need: tuple[str, ...] = ("image", "key", "fold"),
                   missing_hint: str = "") -> pd.DataFrame:
    """The checked table of `path` (fold as int64); `missing_hint` is added when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "fold file not found" + (f"; {missing_hint}" if missing_hint else ""))
    try:
        table = pd.read_csv(path, dtype={"image": str, "key": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(path, f"unreadable fold file: {exc}") from None
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise DataError(path, f"missing columns {missing} (expected {','.join(FOLD_COLUMNS)})")
    fold = pd.to_numeric(table["fold"], errors="coerce")
    bad = fold.isna() | (fold < 0) | (fold % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"fold {str(table['fold'].iloc[row])!r} is not a non-negative integer", row + 2)
    table["fold"] = fold.astype(np.int64)
    ids = [c for c in ("image", "key") if c in table.columns]
    dup = table.duplicated(ids)
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        which = " ".join(str(table[c].iloc[row]) for c in ids)
        raise DataError(path, f"duplicate row for {which}", row + 2)
    return table
