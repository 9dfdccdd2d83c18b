"""The official FashionAI metric (DESIGN.md section 2) plus accuracy and log loss.

For one key with N questions, P the (N, n) probability matrix and label_i the label strings:
  p_i = max_j P_ij,  a_i = argmax_j P_ij,  l_i = label_i[a_i]
  C(t) = #{p_i >= t and l_i == 'y'},  W(t) = #{p_i >= t and l_i == 'n'}   ('m' hits count in neither)
  P(t) = C(t) / (C(t) + W(t)),  defined as 0 when C + W = 0 (every counted hit was an 'm')
  AP = mean of P(t) over the distinct values t of p_i;  BasicPrecision = P(0) (all rows).
Ties: every row with p_i >= t counts at threshold t, and each distinct confidence is one threshold.
Everything is vectorised (one sort plus cumulative sums) because it runs on ~100k rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss as sk_log_loss

from fashiontag.core.errors import DataError
from fashiontag.fashionai.probs import prob_columns, probs_of

log = logging.getLogger(__name__)

METRIC_COLUMNS = ["key", "n", "mAP", "basic_precision", "accuracy", "log_loss"]
PROB_EPS = 1e-15  # clip before the log so a confident miss costs a large but finite loss


def _label_matrix(labels: Sequence[str], n: int) -> np.ndarray:
    """(N, n) uint8 character codes of the label strings; each must have n characters."""
    labels = [str(s) for s in labels]
    bad = [i for i, s in enumerate(labels) if len(s) != n]
    if bad:
        raise ValueError(f"label {labels[bad[0]]!r} (row {bad[0]}) has {len(labels[bad[0]])} characters, expected {n}")
    if not labels:
        return np.zeros((0, n), dtype=np.uint8)
    return np.frombuffer("".join(labels).encode("ascii", errors="replace"), dtype=np.uint8).reshape(len(labels), n)


def precision_curve(confidence: np.ndarray, hit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, P(t)) over the distinct confidences, highest threshold first.

    `hit` holds the character of the label at each row's argmax: b'y', b'n' or b'm' as uint8.
    """
    order = np.argsort(-confidence, kind="stable")
    conf = confidence[order]
    correct = np.cumsum(hit[order] == ord("y"))
    wrong = np.cumsum(hit[order] == ord("n"))
    # The last row of each run of equal confidences: counts there include every tie (p_i >= t).
    last = np.r_[np.nonzero(np.diff(conf))[0], len(conf) - 1]
    c, w = correct[last], wrong[last]
    total = c + w
    precision = np.divide(c, total, out=np.zeros(len(c), dtype=np.float64), where=total > 0)
    return conf[last], precision


def _log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    n = probs.shape[1]
    if n < 2:
        return 0.0
    clipped = np.clip(probs, PROB_EPS, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)  # sklearn insists on rows summing to 1
    return float(sk_log_loss(y, clipped, labels=list(range(n))))


def key_metrics(probs: np.ndarray, labels: Sequence[str]) -> dict:
    """n, mAP (this key's AP), basic_precision (P(0)), accuracy (argmax == 'y') and log loss of one key."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probs must be a (rows, values) matrix, got shape {probs.shape}")
    if len(labels) != len(probs):
        raise ValueError(f"{len(probs)} probability rows but {len(labels)} labels")
    if not np.isfinite(probs).all():
        raise ValueError("probabilities contain NaN or infinity")
    n_rows, n_values = probs.shape
    if n_rows == 0:
        return {"n": 0, "mAP": float("nan"), "basic_precision": float("nan"),
                "accuracy": float("nan"), "log_loss": float("nan")}
    chars = _label_matrix(labels, n_values)
    is_y = chars == ord("y")
    if not (is_y.sum(axis=1) == 1).all():
        raise ValueError("every label string needs exactly one 'y'")
    y = is_y.argmax(axis=1)
    pred = probs.argmax(axis=1)
    confidence = probs[np.arange(n_rows), pred]
    hit = chars[np.arange(n_rows), pred]
    _, precision = precision_curve(confidence, hit)
    return {
        "n": int(n_rows),
        "mAP": float(precision.mean()),
        # The lowest distinct threshold includes every row, so it is P(0).
        "basic_precision": float(precision[-1]),
        "accuracy": float((pred == y).mean()),
        "log_loss": _log_loss(probs, y),
    }


def _overall(rows: list[dict]) -> dict:
    """Competition totals are unweighted means over keys (a small key counts as much as a large one)."""
    table = pd.DataFrame(rows)
    out = {"key": "overall", "n": int(table["n"].sum())}
    for col in METRIC_COLUMNS[2:]:
        out[col] = float(table[col].mean()) if len(table) else float("nan")
    return out


def score_tables(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    attributes: dict[str, list[str]],
    source: str = "<predictions>",
) -> pd.DataFrame:
    """Score a probability table (image, key, p_*) against a label table (image, key, label).

    Returns one row per key (in the label table's order) with METRIC_COLUMNS, then an 'overall' row:
    its mAP is the mean AP over keys, and BasicPrecision, accuracy and log loss are likewise the
    unweighted means over keys; its n is the total row count. Predictions for unlabelled rows are
    ignored; a labelled row without a prediction is a DataError naming `source` and the count.
    p columns beyond a key's value count may be NaN (tables mixing keys of different sizes).
    """
    for name, table, cols in (("predictions", pred, ["image", "key"]), ("labels", truth, ["image", "key", "label"])):
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise DataError(source, f"{name} table lacks columns {missing}")
    dup = pred.duplicated(["image", "key"])
    if dup.any():
        first = pred.loc[dup, ["image", "key"]].iloc[0]
        raise DataError(source, f"{int(dup.sum())} duplicate prediction rows, e.g. {first['image']} ({first['key']})")
    merged = truth[["image", "key", "label"]].merge(
        pred.drop(columns=[c for c in ("label", "line") if c in pred.columns]),
        on=["image", "key"], how="left", validate="many_to_one", indicator=True,
    )
    absent = merged["_merge"] == "left_only"
    if absent.any():
        examples = ", ".join(f"{r.image} ({r.key})" for r in merged.loc[absent].head(3).itertuples())
        raise DataError(
            source, f"{int(absent.sum())} of {len(truth)} labelled rows have no prediction (e.g. {examples})"
        )
    n_extra = len(pred) - len(merged)
    if n_extra > 0:
        log.info("%d predicted rows have no label and are not scored", n_extra)
    rows = []
    for key in dict.fromkeys(merged["key"]):
        if key not in attributes:
            raise DataError(source, f"unknown attribute key {key!r}")
        part = merged[merged["key"] == key]
        absent_cols = [c for c in prob_columns(len(attributes[key])) if c not in part.columns]
        if absent_cols:
            raise DataError(source, f"{key}: predictions lack probability columns {absent_cols}")
        probs = probs_of(part, len(attributes[key]))
        if not np.isfinite(probs).all():
            raise DataError(source, f"{key}: predictions have missing or non-finite probabilities "
                                    f"(expected {len(attributes[key])} per row)")
        try:
            rows.append({"key": key, **key_metrics(probs, part["label"].tolist())})
        except ValueError as exc:
            raise DataError(source, f"{key}: {exc}") from None
    return pd.DataFrame(rows + [_overall(rows)], columns=METRIC_COLUMNS)
