"""Probability tables: the one column convention every run file uses (oof.csv, test.csv, blends).

A table has `image`, `key`, optional `fold` and `label`, and p_0..p_{n-1} in the key's value order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fashiontag.core.errors import DataError

PREFIX = "p_"


def prob_columns(n: int) -> list[str]:
    return [f"{PREFIX}{i}" for i in range(n)]


def n_probs(df: pd.DataFrame) -> int:
    """Number of probability columns; they must be p_0..p_{n-1} with no gap."""
    cols = [c for c in df.columns if c.startswith(PREFIX)]
    if cols != prob_columns(len(cols)):
        raise DataError("<table>", f"probability columns must be p_0..p_{{n-1}} in order, got {cols}")
    return len(cols)


def probs_of(df: pd.DataFrame, n: int | None = None) -> np.ndarray:
    """The (rows, n) float64 probability matrix of a table (NaN columns beyond a key's n are dropped)."""
    n = n_probs(df) if n is None else n
    return df[prob_columns(n)].to_numpy(dtype=np.float64)


def with_probs(base: pd.DataFrame, probs: np.ndarray) -> pd.DataFrame:
    """`base`'s id columns plus p_i columns from `probs` (rows aligned)."""
    out = base.reset_index(drop=True).copy()
    for i, col in enumerate(prob_columns(probs.shape[1])):
        out[col] = probs[:, i]
    return out
