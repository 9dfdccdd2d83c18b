"""Blends: runs that combine other runs' out-of-fold (and test) probabilities.

Methods (config `ensemble.method`):
- mean: equal (or fixed `ensemble.weights`) arithmetic mean of probabilities;
- weighted: arithmetic mean with weights fitted on OOF by minimising log loss (scipy). Reported
  honestly: the weights scored on fold k's rows were fitted on the other folds only (nested), so the
  blend's OOF is as out-of-sample as its inputs'; test rows use the weights fitted on every row;
- geometric: normalised weighted geometric mean (a log-probability average);
- weighted_geometric: the geometric mean with weights fitted on OOF as for weighted (nested the same way);
- rank: per class, the rows' rank within each run averaged, then each row normalised to sum to 1.
  It keeps the ordering (what the FashionAI AP looks at) but its log loss is not meaningful.

A blend is a run: runs/<name>/<key>/{oof.csv, test.csv, cv.json, config.yaml, weights.json, folds.csv,
done.json}.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.stats import rankdata

from fashiontag.core.errors import ConfigError
from fashiontag.core.files import atomic_write_csv, atomic_write_json
from fashiontag.fashionai.probs import probs_of, with_probs
from fashiontag.fashionai.runs import (
    RunError,
    align_to,
    check_same_rows,
    key_values,
    list_keys,
    load_oof,
    load_test,
    write_derived_config,
    write_done,
    write_oof_and_cv,
)

log = logging.getLogger(__name__)

METHODS = ("mean", "weighted", "geometric", "weighted_geometric", "rank")
FITTED = {"weighted": "mean", "weighted_geometric": "geometric"}  # a fitted method -> how it combines
EPS = 1e-7


def combine(stack: np.ndarray, method: str = "mean", weights: np.ndarray | None = None) -> np.ndarray:
    """Blend `stack` (runs, rows, values) into (rows, values) probabilities that sum to 1 per row."""
    n_runs = stack.shape[0]
    w = np.full(n_runs, 1.0 / n_runs) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    method = FITTED.get(method, method)
    if method == "mean":
        out = np.tensordot(w, stack, axes=1)
    elif method == "geometric":
        out = np.exp(np.tensordot(w, np.log(np.clip(stack, EPS, 1.0)), axes=1))
    elif method == "rank":
        # rankdata over rows, per run and class; scaled to (0, 1] so runs weigh alike.
        ranks = rankdata(stack, axis=1) / stack.shape[1]
        out = np.tensordot(w, ranks, axes=1)
    else:
        raise ConfigError(f"ensemble.method must be one of {', '.join(METHODS)}, got {method!r}")
    return out / out.sum(axis=1, keepdims=True)


def _log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], EPS, 1.0))))


def fit_weights(stack: np.ndarray, y: np.ndarray, method: str = "weighted") -> np.ndarray:
    """Weights (summing to 1) minimising the blend's log loss on (stack, y).

    Weights are a softmax of free parameters, so the optimiser needs no constraints; starting from
    equal weights, a run that adds nothing ends near zero rather than negative.
    """
    base = FITTED.get(method, method)

    def loss(theta: np.ndarray) -> float:
        w = np.exp(theta - theta.max())
        return _log_loss(combine(stack, base, w / w.sum()), y)

    res = minimize(loss, np.zeros(stack.shape[0]), method="L-BFGS-B")
    w = np.exp(res.x - res.x.max())
    return w / w.sum()


def label_index(labels: pd.Series) -> np.ndarray:
    """The 'y' position of each label string."""
    return np.array([str(s).index("y") for s in labels], dtype=np.int64)


def blend_key(oofs: dict[str, pd.DataFrame], tests: dict[str, pd.DataFrame] | None, method: str,
              fixed: list[float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None, dict]:
    """Blend one key: returns (oof, test or None, weights record)."""
    names = list(oofs)
    check_same_rows(oofs, "blend")
    ref = oofs[names[0]].reset_index(drop=True)
    aligned = [align_to(oofs[n], ref["image"]) for n in names]
    stack = np.stack([probs_of(df) for df in aligned])
    record: dict[str, Any] = {"method": method, "runs": names}
    if fixed is not None:
        if len(fixed) != len(names):
            raise ConfigError(f"ensemble.weights has {len(fixed)} values for {len(names)} runs")
        full = np.asarray(fixed, dtype=np.float64) / np.sum(fixed)
        oof_probs = combine(stack, method, full)
    elif method in FITTED:
        y, folds = label_index(ref["label"]), ref["fold"].to_numpy()
        oof_probs = np.zeros(stack.shape[1:])
        per_fold = {}
        for k in np.unique(folds):
            inside = folds == k
            w = fit_weights(stack[:, ~inside], y[~inside], method)
            oof_probs[inside] = combine(stack[:, inside], method, w)
            per_fold[str(int(k))] = w.round(6).tolist()
        full = fit_weights(stack, y, method)
        record["weights_per_fold"] = per_fold
        record["note"] = "oof rows of fold k use weights fitted on the other folds; test uses the full fit"
    else:
        full = np.full(len(names), 1.0 / len(names))
        oof_probs = combine(stack, method, full)
    record["weights"] = dict(zip(names, full.round(6).tolist(), strict=True))
    oof = with_probs(ref[["image", "key", "fold", "label"]], oof_probs)

    test = None
    if tests is not None:
        check_same_rows(tests, "blend (test.csv)", folds=False)
        tref = tests[names[0]].reset_index(drop=True)
        tstack = np.stack([probs_of(align_to(tests[n], tref["image"])) for n in names])
        test = with_probs(tref[["image", "key"]], combine(tstack, method, full))
    return oof, test, record


def _pick_oof(key_dir: Path, use_tta: bool) -> tuple[pd.DataFrame, str]:
    """The TTA OOF matches a test.csv predicted with TTA, so it is preferred when present."""
    if use_tta and (key_dir / "oof_tta.csv").exists():
        return load_oof(key_dir, tta=True), "oof_tta.csv"
    return load_oof(key_dir), "oof.csv"


def blend_runs(run_dirs: list[str | Path], out_dir: str | Path, cfg: dict, keys: list[str] | None = None,
               force: bool = False, use_tta: bool = True) -> dict[str, dict]:
    """Blend the runs `run_dirs` key by key into `out_dir`; returns key -> cv dict."""
    run_dirs = [Path(r) for r in run_dirs]
    out_dir = Path(out_dir)
    if len(run_dirs) < 2:
        raise RunError("a blend needs at least two runs")
    names = [r.name for r in run_dirs]
    if len(set(names)) != len(names):
        raise RunError(f"the same run is named twice: {names}")
    method = cfg["ensemble"]["method"]
    if method not in METHODS:
        raise ConfigError(f"ensemble.method must be one of {', '.join(METHODS)}, got {method!r}")
    fixed = cfg["ensemble"]["weights"]
    per_run = {r.name: set(list_keys(r)) for r in run_dirs}
    common = sorted(set.intersection(*per_run.values()))
    if keys:
        lacking = {n: sorted(set(keys) - ks) for n, ks in per_run.items() if set(keys) - ks}
        if lacking:
            raise RunError(f"blend: key(s) missing from run(s): {lacking}")
        common = [k for k in keys]
    if not common:
        raise RunError(f"blend: the runs share no key ({ {n: sorted(k) for n, k in per_run.items()} })")
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise RunError(f"{out_dir} already exists; pass --force to replace the blend")

    results = {}
    for key in common:
        key_dirs = [r / key for r in run_dirs]
        picked = {d.parent.name: _pick_oof(d, use_tta) for d in key_dirs}
        oofs = {n: df for n, (df, _) in picked.items()}
        have_test = [d for d in key_dirs if (d / "test.csv").exists()]
        tests = None
        if len(have_test) == len(key_dirs):
            tests = {d.parent.name: load_test(d) for d in key_dirs}
        elif have_test:
            log.warning("%s: only %s have test.csv; the blend gets no test.csv for this key", key,
                        [d.parent.name for d in have_test])
        oof, test, record = blend_key(oofs, tests, method, fixed)
        record["oof_files"] = {n: f for n, (_, f) in picked.items()}
        kdir = out_dir / key
        cv = write_oof_and_cv(kdir, oof)
        if test is not None:
            atomic_write_csv(kdir / "test.csv", test)
        atomic_write_csv(kdir / "folds.csv", oof[["image", "key", "fold"]])
        atomic_write_json(kdir / "weights.json", record)
        n = oof.shape[1] - 4
        write_derived_config(kdir, cfg, "blend", [str(d) for d in key_dirs], key_values(key_dirs[0], n),
                             method=method)
        write_done(kdir, "blend", key=key, inputs=[str(d) for d in key_dirs], method=method)
        log.info("%s: blend %s of %s -> mAP %.4f (weights %s)", key, method, names, cv.get("mAP", float("nan")),
                 record["weights"])
        results[key] = cv
    return results
