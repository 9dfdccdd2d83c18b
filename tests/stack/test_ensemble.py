"""Blends: combination rules by hand, OOF-fitted weights (nested per fold), refusals of mismatched runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fashiontag.core.config import load_config
from fashiontag.fashionai.probs import probs_of
from fashiontag.fashionai.runs import RunError, load_oof, run_info
from fashiontag.stack.blend import blend_runs, combine, fit_weights, label_index
from helpers.runs import KEY, make_run, truth


def test_combine_rules_by_hand():
    a = np.array([[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]])
    b = np.array([[0.6, 0.4], [0.1, 0.9], [0.3, 0.7]])
    stack = np.stack([a, b])
    np.testing.assert_allclose(combine(stack, "mean"), (a + b) / 2)
    np.testing.assert_allclose(combine(stack, "weighted", np.array([3.0, 1.0])), 0.75 * a + 0.25 * b)
    geo = np.sqrt(a * b)
    np.testing.assert_allclose(combine(stack, "geometric"), geo / geo.sum(axis=1, keepdims=True))
    # Ranks within each class column (1..3) / 3, averaged over runs, rows renormalised.
    ranks_a = np.array([[3, 1], [1, 3], [2, 2]]) / 3
    ranks_b = np.array([[3, 1], [1, 3], [2, 2]]) / 3
    r = (ranks_a + ranks_b) / 2
    np.testing.assert_allclose(combine(stack, "rank"), r / r.sum(axis=1, keepdims=True))
    for method in ("mean", "geometric", "rank"):
        np.testing.assert_allclose(combine(stack, method).sum(axis=1), 1.0)


def test_better_run_gets_most_weight():
    t = truth(n_rows=300, seed=1)
    y = t["y"].to_numpy()
    rng = np.random.default_rng(0)
    good = np.eye(6)[y] * 4 + rng.normal(0, 1, (300, 6))
    bad = rng.normal(0, 1, (300, 6))
    stack = np.stack([np.exp(s) / np.exp(s).sum(1, keepdims=True) for s in (bad, good)])
    w = fit_weights(stack, y)
    assert w.sum() == pytest.approx(1.0)
    assert w[1] > 0.8, w


def test_weighted_blend_is_nested_and_written(tmp_path):
    runs = tmp_path / "runs"
    t = truth(n_rows=90)
    a = make_run(runs, "a", quality=3.0, seed=1, table=t)
    b = make_run(runs, "b", quality=0.3, seed=2, table=t)
    cfg = load_config(overrides=["ensemble.method=weighted"])
    out = runs / "blend"
    cv = blend_runs([a, b], out, cfg)
    kdir = out / KEY
    for name in ("oof.csv", "test.csv", "cv.json", "config.yaml", "weights.json", "folds.csv", "done.json"):
        assert (kdir / name).exists(), name
    rec = json.loads((kdir / "weights.json").read_text())
    assert rec["weights"]["a"] > rec["weights"]["b"]
    assert set(rec["weights_per_fold"]) == {"0", "1", "2"}
    assert run_info(kdir)["kind"] == "blend"
    # Fold 0's rows are blended with weights fitted on folds 1 and 2 only.
    oa, ob, blend = load_oof(a / KEY), load_oof(b / KEY), load_oof(kdir)
    stack = np.stack([probs_of(oa), probs_of(ob)])
    y, folds = label_index(oa["label"]), oa["fold"].to_numpy()
    w0 = fit_weights(stack[:, folds != 0], y[folds != 0])
    np.testing.assert_allclose(probs_of(blend)[folds == 0], combine(stack[:, folds == 0], "mean", w0), atol=1e-6)
    np.testing.assert_allclose(probs_of(blend).sum(axis=1), 1.0, atol=1e-9)
    assert cv[KEY]["n"] == 90 and len(cv[KEY]["folds"]) == 3
    # Test rows use the full-fit weights.
    full = np.array([rec["weights"]["a"], rec["weights"]["b"]])
    ta, tb = pd.read_csv(a / KEY / "test.csv"), pd.read_csv(b / KEY / "test.csv")
    expect = combine(np.stack([probs_of(ta), probs_of(tb)]), "mean", full)
    np.testing.assert_allclose(probs_of(pd.read_csv(kdir / "test.csv")), expect, atol=1e-5)
    with pytest.raises(RunError, match="--force"):
        blend_runs([a, b], out, cfg)


def test_weighted_geometric_blend_is_nested(tmp_path):
    runs = tmp_path / "runs"
    t = truth(n_rows=90)
    a = make_run(runs, "a", quality=3.0, seed=1, table=t)
    b = make_run(runs, "b", quality=0.3, seed=2, table=t)
    cv = blend_runs([a, b], runs / "geo", load_config(overrides=["ensemble.method=weighted_geometric"]))
    kdir = runs / "geo" / KEY
    rec = json.loads((kdir / "weights.json").read_text())
    assert rec["method"] == "weighted_geometric" and rec["weights"]["a"] > rec["weights"]["b"]
    oa, ob, blend = load_oof(a / KEY), load_oof(b / KEY), load_oof(kdir)
    stack = np.stack([probs_of(oa), probs_of(ob)])
    y, folds = label_index(oa["label"]), oa["fold"].to_numpy()
    for k in range(3):
        # Fold k's rows: a geometric mean with weights fitted (for the geometric mean) on the other folds.
        wk = fit_weights(stack[:, folds != k], y[folds != k], "weighted_geometric")
        assert wk.tolist() == pytest.approx(rec["weights_per_fold"][str(k)], abs=1e-5)
        geo = np.exp(np.tensordot(wk, np.log(np.clip(stack[:, folds == k], 1e-7, 1.0)), axes=1))
        np.testing.assert_allclose(probs_of(blend)[folds == k], geo / geo.sum(axis=1, keepdims=True), atol=1e-6)
    assert cv[KEY]["n"] == 90


def test_refuses_mismatched_runs(tmp_path):
    runs = tmp_path / "runs"
    t = truth(n_rows=30)
    a = make_run(runs, "a", 2.0, 1, t)
    cfg = load_config()
    other_folds = t.assign(fold=(t["fold"] + 1) % 3)
    b = make_run(runs, "b", 2.0, 2, other_folds)
    with pytest.raises(RunError, match="fold assignments.*different fold files"):
        blend_runs([a, b], runs / "x", cfg)
    five = truth(n_rows=30, n_values=5)
    c = make_run(runs, "c", 2.0, 3, five)
    with pytest.raises(RunError, match="has 5 values per row but a has 6"):
        blend_runs([a, c], runs / "y", cfg)
    d = make_run(runs, "d", 2.0, 4, t.iloc[:20])
    with pytest.raises(RunError, match="cover different images"):
        blend_runs([a, d], runs / "z", cfg)
    with pytest.raises(RunError, match="at least two runs"):
        blend_runs([a], runs / "w", cfg)


def test_ensemble_cli(tmp_path):
    from fashiontag.cli import main

    runs = tmp_path / "runs"
    t = truth(n_rows=30)
    make_run(runs, "a", 2.0, 1, t)
    make_run(runs, "b", 1.0, 2, t)
    args = ["ensemble", "--runs", "a", "b", "--set", f"runs_dir={runs}", "--set", "ensemble.method=geometric"]
    assert main(args) == 0
    assert (runs / "blend_geometric_a_b" / KEY / "weights.json").exists()
    assert main(args) == 2  # exists: --force needed
    assert main([*args, "--force", "--cat", "skirt_length"]) == 0
    assert main(["ensemble", "--runs", "a", "nosuch", "--set", f"runs_dir={runs}"]) == 2
