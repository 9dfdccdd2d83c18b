"""The stack: rich pooling, features from each row's own fold CNN, heads that never see their fold."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from fashiontag.core.config import load_config
from fashiontag.core.skips import SkipReport
from fashiontag.data.loaders import view_loaders as loaders
from fashiontag.fashionai.probs import probs_of
from fashiontag.fashionai.runs import RunError, load_oof, run_info
from fashiontag.models.build import load_fold_model
from fashiontag.models.features import extract_features
from fashiontag.stack.runner import stack_run
from fashiontag.stack.xgb_head import fit_fold_heads
from helpers.models import make_trained_run

STACK = {"n_estimators": 30, "max_depth": 2, "learning_rate": 0.3, "early_stopping_rounds": 5, "inner_valid": 0.2,
         "n_jobs": 1}


def test_heads_never_train_on_their_fold():
    rng = np.random.default_rng(0)
    n, folds = 120, np.arange(120) % 4
    y = rng.integers(0, 3, n)
    X = rng.normal(0, 1, (n, 10)).astype(np.float32)
    X[:, 0] += 3 * y  # one informative feature
    oof, heads = fit_fold_heads(X, y, folds, 3, {**load_config()["stack"], **STACK}, seed=0)
    assert [h.fold for h in heads] == [0, 1, 2, 3]
    for h in heads:
        own = np.flatnonzero(folds == h.fold)
        assert np.intersect1d(h.train_index, own).size == 0
        np.testing.assert_array_equal(h.train_index, np.flatnonzero(folds != h.fold))
        np.testing.assert_array_equal(np.sort(np.r_[h.fit_index, h.inner_index]), h.train_index)
    np.testing.assert_allclose(oof.sum(axis=1), 1.0, atol=1e-6)
    assert (oof.argmax(axis=1) == y).mean() > 0.8


@pytest.fixture
def run(tmp_path):
    torch.set_num_threads(1)
    return make_trained_run(tmp_path, n_values=3, n_train=18, n_folds=3, n_test=4,
                            overrides=tuple(f"stack.{k}={v}" for k, v in STACK.items()))


def test_stack_run_uses_each_rows_own_fold_cnn(run):
    out = run["run"].parent / "cnn_xgb"
    cv = stack_run(run["run"], run["test_root"])
    kdir = out / run["key"]
    for name in ("oof.csv", "test.csv", "cv.json", "config.yaml", "folds.csv", "heads.json", "fold_0/xgb.ubj"):
        assert (kdir / name).exists(), name
    done = json.loads((kdir / "done.json").read_text())
    assert done["kind"] == "stack" and set(done["code"]) >= {"git_commit", "git_dirty", "versions"}
    assert run_info(kdir)["kind"] == "stack" and run_info(kdir)["inputs"] == [str(run["key_dir"])]
    oof = load_oof(kdir)
    src = load_oof(run["key_dir"])
    assert list(oof["image"]) == list(src["image"]) and list(oof["fold"]) == list(src["fold"])
    np.testing.assert_allclose(probs_of(oof).sum(axis=1), 1.0, atol=1e-6)
    assert cv[run["key"]]["n"] == 18
    heads = json.loads((kdir / "heads.json").read_text())
    assert [h["trained_on_folds"] for h in heads] == [[1, 2], [0, 2], [0, 1]]
    # Fold 1's OOF features are fold 1's CNN's pooled features of exactly fold 1's rows.
    feats = np.load(kdir / "features" / "fold_1_oof.npy")
    model, pre = load_fold_model(run["key_dir"] / "fold_1")
    rows = src[src["fold"] == 1]
    make_dl, _ = loaders([str(run["train_root"] / i) for i in rows["image"]], pre, run["cfg"], torch.device("cpu"),
                         SkipReport())
    (direct,) = extract_features(model[0], make_dl(False), torch.device("cpu"), ["avg", "max", "grid2"])
    np.testing.assert_allclose(feats, direct, rtol=1e-5, atol=1e-6)
    assert feats.shape == (6, 6 * model[0](torch.zeros(1, 3, 32, 32)).shape[1])
    test = pd.read_csv(kdir / "test.csv")
    assert len(test) == 4 and np.allclose(probs_of(test).sum(axis=1), 1.0)
    with pytest.raises(RunError, match="--force"):
        stack_run(run["run"], run["test_root"])
    stamp = (kdir / "features" / "fold_1_oof.npy").stat().st_mtime_ns
    stack_run(run["run"], run["test_root"], force=True)
    assert (kdir / "features" / "fold_1_oof.npy").stat().st_mtime_ns == stamp  # cached features reused


def test_stack_refuses_mismatched_folds(run):
    folds = pd.read_csv(run["key_dir"] / "folds.csv")
    folds["fold"] = (folds["fold"] + 1) % 3
    folds.to_csv(run["key_dir"] / "folds.csv", index=False)
    with pytest.raises(RunError, match="disagree on fold assignments"):
        stack_run(run["run"], None)
