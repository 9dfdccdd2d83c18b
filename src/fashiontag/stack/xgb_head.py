"""XGBoost heads trained out of fold: head k learns from the OTHER folds' rows and predicts fold k.

So no row is ever predicted by a head that saw its label. Early stopping uses an inner split of the
head's own training rows (stratified when every value has two rows), never fold k.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb
from sklearn.model_selection import train_test_split

from fashiontag.core.progress import Progress

log = logging.getLogger(__name__)


@dataclass
class FoldHead:
    """One fold's head and exactly which rows it was fitted on (for audits and tests)."""

    fold: int
    booster: xgb.Booster
    train_index: np.ndarray   # every row it learned from (fit + inner validation)
    fit_index: np.ndarray
    inner_index: np.ndarray
    best_iteration: int

    def predict(self, features: np.ndarray) -> np.ndarray:
        dm = xgb.DMatrix(features)
        probs = self.booster.predict(dm, iteration_range=(0, self.best_iteration + 1))
        return probs.astype(np.float64) / probs.sum(axis=1, keepdims=True)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(path)
        return path


class RoundProgress(xgb.callback.TrainingCallback):
    """One progress update per boosting round (early stopping may end the head before the total)."""

    def __init__(self, bar: Progress):
        super().__init__()
        self.bar = bar

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        self.bar.update(1)
        return False  # never stops training itself


def xgb_params(stack_cfg: dict, n_classes: int, seed: int, device: str = "cpu") -> dict:
    return {
        "objective": "multi:softprob", "num_class": int(n_classes), "eval_metric": "mlogloss",
        "max_depth": int(stack_cfg["max_depth"]), "eta": float(stack_cfg["learning_rate"]),
        "tree_method": "hist", "device": "cuda" if device.startswith("cuda") else "cpu", "seed": int(seed),
        # Thousands of pooled features, few rows: sampling columns is faster and regularises.
        "colsample_bytree": float(stack_cfg["colsample_bytree"]), "subsample": 0.9,
        "max_bin": int(stack_cfg["max_bin"]),  # histogram bins per feature; fewer = faster
        **({"nthread": int(stack_cfg["n_jobs"])} if stack_cfg["n_jobs"] else {}),
    }


def _inner_split(rows: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(y[rows])
    stratify = y[rows] if counts[counts > 0].min() >= 2 else None
    n_inner = max(1, int(round(fraction * len(rows))))
    if stratify is not None and n_inner < len(np.unique(y[rows])):
        stratify = None  # too few inner rows to hold every value
    fit, inner = train_test_split(rows, test_size=n_inner, random_state=seed, stratify=stratify)
    return np.sort(fit), np.sort(inner)


def fit_fold_heads(features: np.ndarray, y: np.ndarray, folds: np.ndarray, n_classes: int, stack_cfg: dict,
                   seed: int = 0, device: str = "cpu") -> tuple[np.ndarray, list[FoldHead]]:
    """Out-of-fold probabilities (rows, n_classes) and one head per fold.

    features: (rows, D) where row i's features come from the CNN of row i's own fold (the one that did
    not train on it): the caller's choice, documented in stack.runner.
    """
    params = xgb_params(stack_cfg, n_classes, seed, device)
    oof = np.zeros((len(y), n_classes))
    heads = []
    for k in np.unique(folds):
        held = np.flatnonzero(folds == k)
        train = np.flatnonzero(folds != k)
        if len(train) < 2:
            raise ValueError(f"fold {k}: the other folds have {len(train)} row(s); a head needs at least 2")
        fit, inner = _inner_split(train, y, float(stack_cfg["inner_valid"]), seed)
        dfit = xgb.DMatrix(features[fit], label=y[fit])
        dinner = xgb.DMatrix(features[inner], label=y[inner])
        with Progress(int(stack_cfg["n_estimators"]), f"xgb head fold {k}", unit="round") as bar:
            booster = xgb.train(params, dfit, num_boost_round=int(stack_cfg["n_estimators"]),
                                evals=[(dinner, "inner")], verbose_eval=False,
                                early_stopping_rounds=int(stack_cfg["early_stopping_rounds"]),
                                callbacks=[RoundProgress(bar)])
        best = int(getattr(booster, "best_iteration", booster.num_boosted_rounds() - 1))
        head = FoldHead(int(k), booster, np.sort(train), fit, inner, best)
        oof[held] = head.predict(features[held])
        heads.append(head)
        log.info("xgb head fold %d: %d fit + %d inner rows, best iteration %d", k, len(fit), len(inner), best)
    return oof, heads
