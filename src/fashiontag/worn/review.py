"""`fashiontag worn --review N`: the N least certain calls in each direction, to check on one's own data.

A call's `score` is the strength of its strongest path to "worn" (decision.py): worn calls with the
lowest score and not-worn calls (with a person box) with the highest score are the closest to flipping.
Writes <split stem>.review-worn.jpg and .review-hanger.jpg (contact sheets with the evidence under each
photo) and <split stem>.review.csv (the same rows, least certain first), next to the split file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from fashiontag.core.files import atomic_write_csv
from fashiontag.worn.samples import contact_sheet

log = logging.getLogger(__name__)


def least_certain(split: pd.DataFrame, n: int) -> dict[str, pd.DataFrame]:
    """{"worn": the n weakest worn calls, "hanger": the n strongest not-worn calls that had a person box}."""
    worn = split["worn"].astype(bool)
    boxed = split["persons"].fillna(0) > 0  # a photo without any person box cannot flip: nothing to review
    return {
        "worn": split[worn].sort_values("score", kind="stable").head(n),
        "hanger": split[~worn & boxed].sort_values("score", ascending=False, kind="stable").head(n),
    }


def write_review(root: str | Path, split: pd.DataFrame, split_csv: str | Path, n: int) -> dict[str, Path | None]:
    """The review sheets and table for `split` (a split file's rows, images relative to `root`)."""
    split_csv = Path(split_csv)
    groups = least_certain(split, n)
    out: dict[str, Path | None] = {}
    for group, rows in groups.items():
        out[group] = contact_sheet(root, rows, split_csv.with_suffix(f".review-{group}.jpg"))
        log.info("review: the %d least certain %s calls: %s", len(rows), group, out[group] or "none")
    table = pd.concat([rows.assign(call=group) for group, rows in groups.items()], ignore_index=True)
    out["table"] = split_csv.with_suffix(".review.csv")
    atomic_write_csv(out["table"], table)
    return out
