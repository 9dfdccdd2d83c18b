"""The official FashionAI metric on hand-computed cases, ties, 'm' labels, and a brute-force reference."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fashiontag.core.errors import DataError
from fashiontag.fashionai.metric import key_metrics, score_tables

# Five questions of a 3-value key; the comment gives (p_i, label at argmax).
PROBS = np.array([
    [0.9, 0.05, 0.05],  # 0.9 y
    [0.1, 0.8, 0.1],    # 0.8 n
    [0.2, 0.2, 0.6],    # 0.6 y
    [0.3, 0.7, 0.0],    # 0.7 m  (counts in neither C nor W)
    [0.5, 0.4, 0.1],    # 0.5 n
])
LABELS = ["ynn", "ynn", "nmy", "ymn", "nny"]


def reference_ap(probs: np.ndarray, labels: list[str]) -> tuple[float, float]:
    """DESIGN.md section 2 written as literally as possible (loops), for comparison."""
    p = probs.max(axis=1)
    hit = [lab[a] for lab, a in zip(labels, probs.argmax(axis=1), strict=True)]
    precisions = []
    for t in sorted(set(p.tolist())):
        c = sum(1 for pi, h in zip(p, hit, strict=True) if pi >= t and h == "y")
        w = sum(1 for pi, h in zip(p, hit, strict=True) if pi >= t and h == "n")
        precisions.append(c / (c + w) if c + w else 0.0)
    c0 = hit.count("y")
    w0 = hit.count("n")
    return float(np.mean(precisions)), c0 / (c0 + w0)


def test_hand_computed_case_with_maybe_label():
    m = key_metrics(PROBS, LABELS)
    # thresholds 0.9, 0.8, 0.7, 0.6, 0.5 -> P = 1/1, 1/2, 1/2 ('m' ignored), 2/3, 2/4
    assert m["mAP"] == pytest.approx((1 + 0.5 + 0.5 + 2 / 3 + 0.5) / 5)
    assert m["basic_precision"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(2 / 5)  # argmax == y on rows 0 and 2
    expected_loss = -np.mean(np.log([0.9, 0.1, 0.6, 0.3, 0.1]))
    assert m["log_loss"] == pytest.approx(expected_loss, rel=1e-9)
    assert m["n"] == 5


def test_tied_confidences_form_one_threshold():
    probs = np.array([[0.8, 0.2], [0.8, 0.2], [0.6, 0.4], [0.4, 0.6]])
    labels = ["yn", "ny", "yn", "ny"]
    m = key_metrics(probs, labels)
    # t=0.8: both tied rows count (C=1, W=1) -> 1/2; t=0.6: C=3, W=1 -> 3/4. Per-row thresholds would give 0.722.
    assert m["mAP"] == pytest.approx((0.5 + 0.75) / 2)
    assert m["basic_precision"] == pytest.approx(0.75)


def test_precision_is_zero_when_only_maybe_hits_pass():
    probs = np.array([[0.9, 0.1], [0.3, 0.7]])
    labels = ["my", "ny"]  # row 0's argmax hits an 'm'; row 1 is correct
    m = key_metrics(probs, labels)
    assert m["mAP"] == pytest.approx((0.0 + 1.0) / 2)  # P(0.9) has C + W = 0 -> defined as 0
    assert m["basic_precision"] == pytest.approx(1.0)
    assert m["accuracy"] == pytest.approx(0.5)


def test_perfect_and_confidently_wrong():
    eye = np.eye(4)
    good = key_metrics(eye, ["ynnn", "nynn", "nnyn", "nnny"])
    assert good["mAP"] == good["basic_precision"] == good["accuracy"] == 1.0
    assert good["log_loss"] < 1e-6
    bad = key_metrics(eye, ["nynn", "ynnn", "nnny", "nnyn"])
    assert bad["mAP"] == bad["accuracy"] == 0.0
    assert math.isfinite(bad["log_loss"]) and bad["log_loss"] > 10  # clipped, not infinite


def test_vectorised_matches_literal_definition_with_ties_and_maybes():
    rng = np.random.default_rng(0)
    n_rows, n = 400, 5
    logits = rng.normal(0, 1.5, (n_rows, n))
    probs = np.round(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 2)  # rounding makes many ties
    probs[:, 0] += 1 - probs.sum(1)
    y = rng.integers(0, n, n_rows)
    labels = []
    for i, v in enumerate(y):
        chars = ["n"] * n
        if i % 7 == 0:
            chars[(v + 1) % n] = "m"
        chars[v] = "y"
        labels.append("".join(chars))
    m = key_metrics(probs, labels)
    ap, bp = reference_ap(probs, labels)
    assert len(set(probs.max(1))) < n_rows  # the case really has ties
    assert m["mAP"] == pytest.approx(ap, abs=1e-12)
    assert m["basic_precision"] == pytest.approx(bp, abs=1e-12)


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="has 2 characters, expected 3"):
        key_metrics(PROBS[:2], ["ynn", "yn"])
    with pytest.raises(ValueError, match="exactly one 'y'"):
        key_metrics(PROBS[:1], ["nnn"])
    with pytest.raises(ValueError, match="2 probability rows but 1 labels"):
        key_metrics(PROBS[:2], ["ynn"])
    assert key_metrics(np.zeros((0, 3)), [])["n"] == 0


def _tables():
    truth = pd.DataFrame({
        "image": [f"a{i}.jpg" for i in range(5)] + ["b0.jpg", "b1.jpg"],
        "key": ["k3"] * 5 + ["k2"] * 2,
        "label": LABELS + ["yn", "ny"],
    })
    pred = pd.DataFrame({"image": truth["image"], "key": truth["key"]})
    probs = np.vstack([PROBS, [[0.7, 0.3, np.nan], [0.6, 0.4, np.nan]]])
    for j in range(3):
        pred[f"p_{j}"] = probs[:, j]
    return truth, pred


def test_score_tables_per_key_and_overall_means():
    truth, pred = _tables()
    extra = pd.DataFrame({"image": ["unlabelled.jpg"], "key": ["k2"], "p_0": [0.5], "p_1": [0.5], "p_2": [np.nan]})
    table = score_tables(pd.concat([pred.iloc[::-1], extra]), truth, {"k3": list("abc"), "k2": list("ab")})
    assert table["key"].tolist() == ["k3", "k2", "overall"]
    k3, k2, overall = (table.iloc[i] for i in range(3))
    assert k3["mAP"] == pytest.approx(key_metrics(PROBS, LABELS)["mAP"])
    # k2: p = 0.7 (y), 0.6 (n) -> P(0.7) = 1, P(0.6) = 1/2
    assert k2["mAP"] == pytest.approx(0.75) and k2["basic_precision"] == pytest.approx(0.5)
    for col in ("mAP", "basic_precision", "accuracy", "log_loss"):
        assert overall[col] == pytest.approx((k3[col] + k2[col]) / 2)  # unweighted mean over keys
    assert overall["n"] == 7


def test_score_tables_names_missing_predictions():
    truth, pred = _tables()
    with pytest.raises(DataError, match=r"sub.csv: 2 of 7 labelled rows have no prediction \(e.g. a1.jpg \(k3\)"):
        score_tables(pred.drop(index=[1, 6]), truth, {"k3": list("abc"), "k2": list("ab")}, source="sub.csv")
    with pytest.raises(DataError, match="duplicate prediction rows"):
        score_tables(pd.concat([pred, pred.iloc[:1]]), truth, {"k3": list("abc"), "k2": list("ab")})
    with pytest.raises(DataError, match="non-finite"):
        score_tables(pred, truth, {"k3": list("abc"), "k2": list("abc")})  # k2 rows lack a third value
