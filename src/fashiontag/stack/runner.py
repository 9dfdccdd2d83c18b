"""`stack`: an XGBoost head on the fold CNNs' penultimate features, as its own run `<exp>_xgb`.

Which CNN's features a row gets (the choice that keeps the stack honest):
- an OOF row of fold k gets the features of fold k's CNN, the only CNN that did not train on it;
- head k is fitted on the other folds' rows (each with its own fold's CNN features) and predicts
  fold k's rows, so no row is predicted by a head (or a CNN) that saw its label;
- test rows are predicted by head k on fold k's CNN features (the same pairing head k's OOF rows had),
  and averaged over folds, as the CNN test predictions are.

Writes runs/<exp>_xgb/<key>/{oof.csv, test.csv, cv.json, config.yaml, folds.csv, heads.json,
fold_k/xgb.ubj, features/fold_k_{oof,test}.npy, done.json (last)}.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from fashiontag.core.devices import device_of
from fashiontag.core.errors import ConfigError
from fashiontag.core.files import atomic_write_csv, atomic_write_json
from fashiontag.core.skips import SkipReport, stop_or_fallback
from fashiontag.data.worn_modes import require_plain_mode
from fashiontag.fashionai.format import read_attributes, read_questions
from fashiontag.fashionai.probs import with_probs
from fashiontag.fashionai.runs import (
    RunError,
    check_same_folds,
    key_folds,
    key_values,
    list_keys,
    load_oof,
    read_prob_table,
    require_files,
    run_config,
    write_derived_config,
    write_done,
    write_oof_and_cv,
)
from fashiontag.models.fold_models import iter_fold_models
from fashiontag.stack.features import fold_features
from fashiontag.stack.xgb_head import fit_fold_heads

log = logging.getLogger(__name__)


def _test_questions(test_root: str | Path | None, key: str) -> pd.DataFrame:
    if test_root is None:
        return pd.DataFrame(columns=["image", "key"])
    q = read_questions(test_root, read_attributes(test_root))
    return q[q["key"] == key][["image", "key"]].reset_index(drop=True)


def require_shared_body(cfg: dict, key_dir: Path) -> None:
    """Refuse a run whose folds adapted their own copy of the body's last stages (train.trainable_stages >= 1).

    Each fold's XGBoost head is fit on the other folds' out-of-fold features, every row described by the body
    of the fold that held it out. With per-fold stages those are different feature spaces: on clothing-small
    such a stack scored 0.571 accuracy against 0.902 for the run it stacked (5-fold CV, 2026-11-30).
    """
    n = cfg["train"]["trainable_stages"]
    if n is not None and int(n) > 0:
        raise ConfigError(f"{key_dir}: the XGBoost stack needs one body shared by every fold, and this run "
                          f"fine-tuned its last {n} body stage(s) per fold (train.trainable_stages), so each "
                          "fold describes its photos in its own feature space; blend such runs instead "
                          "(ensemble.members, ensemble.stack: false)")


def stack_key(key_dir: Path, out_key: Path, test_root: str | Path | None, cfg: dict,
              fallback: str | None = None) -> dict:
    """Stack one key; returns its cv dict."""
    key = key_dir.name
    require_plain_mode(cfg, "stack")  # crop/separate runs need crops / group merging (data/worn_modes.py)
    require_shared_body(cfg, key_dir)
    oof = load_oof(key_dir)
    check_same_folds(oof, key_folds(key_dir), f"stack {key_dir}", ("oof.csv", "folds.csv"))
    train_root = Path(cfg["data"]["root"])
    questions = _test_questions(test_root, key)
    test_paths = [str(Path(test_root) / i) for i in questions["image"]] if len(questions) else []
    device = device_of(cfg)
    n = oof.shape[1] - 4
    X: np.ndarray | None = None
    test_feats: dict[int, np.ndarray] = {}
    skips = SkipReport(skip=True)
    done: set[int] = set()
    for k, fdir, model, pre in iter_fold_models(key_dir, device):
        require_files(fdir, ["oof.csv"], key_dir)
        fold_oof = read_prob_table(fdir / "oof.csv", need=("image", "key", "fold", "label"))
        rows = np.flatnonzero(oof["fold"].to_numpy() == k)
        if set(fold_oof["image"]) != set(oof["image"].iloc[rows]):
            raise RunError(f"{fdir}/oof.csv and {key_dir}/oof.csv disagree on fold {k}'s images")
        paths = [str(train_root / i) for i in oof["image"].iloc[rows]]
        feats = fold_features(model, pre, fdir, paths, cfg, device, out_key / "features" / f"fold_{k}_oof.npy",
                              SkipReport(skip=False))
        X = np.full((len(oof), feats.shape[1]), np.nan, dtype=np.float32) if X is None else X
        X[rows] = feats
        if test_paths:
            fold_skips = skips if not test_feats else SkipReport(skip=True)
            test_feats[k] = fold_features(model, pre, fdir, test_paths, cfg, device,
                                          out_key / "features" / f"fold_{k}_test.npy", fold_skips)
            if len(test_feats) == 1:
                stop_or_fallback(skips, out_key / "bad_test_images.csv", fallback)
        done.add(k)
    missing = sorted(set(int(f) for f in oof["fold"].unique()) - done)
    if missing:
        raise RunError(f"{key_dir}: folds {missing} have OOF rows but no trained model; the stack needs every fold")
    y = np.array([s.index("y") for s in oof["label"]])
    stack_cfg = cfg["stack"]
    oof_probs, heads = fit_fold_heads(X, y, oof["fold"].to_numpy(), n, stack_cfg, int(cfg["seed"]),
                                      str(device))
    for h in heads:
        h.save(out_key / f"fold_{h.fold}" / "xgb.ubj")
    cv = write_oof_and_cv(out_key, with_probs(oof[["image", "key", "fold", "label"]], oof_probs))
    atomic_write_csv(out_key / "folds.csv", oof[["image", "key", "fold"]])
    if test_feats:
        by_fold = [h.predict(test_feats[h.fold]) for h in heads]
        test = np.mean(by_fold, axis=0)
        bad = ~np.isfinite(np.stack(list(test_feats.values()))).all(axis=(0, 2))
        test[bad] = 1.0 / n  # unreadable test images, only with --fallback uniform
        atomic_write_csv(out_key / "test.csv", with_probs(questions, test))
    atomic_write_json(out_key / "heads.json", [
        {"fold": h.fold, "n_train": len(h.train_index), "n_fit": len(h.fit_index), "n_inner": len(h.inner_index),
         "trained_on_folds": sorted(int(f) for f in np.unique(oof["fold"].to_numpy()[h.train_index])),
         "best_iteration": h.best_iteration} for h in heads])
    write_derived_config(out_key, cfg, "stack", [str(key_dir)], key_values(key_dir, n), oof_file="oof.csv",
                         pools=list(stack_cfg["pool"]))
    write_done(out_key, "stack", key=key, inputs=[str(key_dir)])
    log.info("%s: XGBoost stack mAP %.4f (log loss %.4f)", key, cv["mAP"], cv["log_loss"])
    return cv


def stack_run(exp_dir: str | Path, test_root: str | Path | None, cfg: dict | None = None,
              out_dir: str | Path | None = None, keys: list[str] | None = None, force: bool = False,
              fallback: str | None = None, overrides: list[str] | None = None) -> dict[str, dict]:
    """Stack every (or the given) key of a training run into `out_dir` (default runs/<exp>_xgb)."""
    exp_dir = Path(exp_dir)
    out_dir = Path(out_dir) if out_dir is not None else exp_dir.parent / f"{exp_dir.name}_xgb"
    all_keys = list_keys(exp_dir)
    keys = keys or all_keys
    absent = [k for k in keys if k not in all_keys]
    if absent:
        raise RunError(f"{exp_dir} has no trained key(s) {absent}; it has {all_keys}")
    results = {}
    for key in keys:
        out_key = out_dir / key
        if (out_key / "oof.csv").exists() and not force:
            raise RunError(f"{out_key} already exists; pass --force to rebuild the stack")
        results[key] = stack_key(exp_dir / key, out_key, test_root, run_config(exp_dir / key, cfg, overrides),
                                 fallback)
    return results
