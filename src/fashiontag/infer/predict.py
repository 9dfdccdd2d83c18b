"""`predict`: every fold of a run predicts the test questions (fold-averaged, with TTA) and, with
tta.on_oof, its own out-of-fold images again with TTA so the CV report shows what TTA is worth.

Writes into the training run: <key>/test.csv, <key>/predict.json (what was done), and with on_oof
<key>/fold_k/oof_tta.csv, <key>/oof_tta.csv, <key>/cv_tta.json.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from fashiontag.core.devices import device_of
from fashiontag.core.errors import FashiontagError
from fashiontag.core.files import atomic_write_csv, atomic_write_json
from fashiontag.core.skips import SkipReport, stop_or_fallback
from fashiontag.data.tensor_loader import view_loader_factory
from fashiontag.data.worn_modes import crops_for, restrict_to_group, split_mode
from fashiontag.fashionai.format import read_attributes, read_questions
from fashiontag.fashionai.probs import with_probs
from fashiontag.fashionai.runs import (
    RunError,
    list_keys,
    read_prob_table,
    require_files,
    run_config,
    write_oof_and_cv,
)
from fashiontag.infer.partial_predict import predict_fold_partial
from fashiontag.models.activations import partial_run
from fashiontag.models.fold_models import iter_fold_models
from fashiontag.models.tta import combine_views, predict_views, view_plan

log = logging.getLogger(__name__)

FALLBACKS = (None, "uniform")


def predict_fold(model: nn.Module, pre: dict, paths: list[str], cfg: dict, device: torch.device,
                 skips: SkipReport, crops=None) -> np.ndarray:
    """(len(paths), n) TTA probabilities of one fold model; rows of unreadable images are NaN.
    crops: worn.mode=crop's person box (or None) per path."""
    if partial_run(cfg):  # only the fine-tuned tail runs, on the frozen prefix's cached activations
        return predict_fold_partial(model, pre, paths, cfg, device, skips, crops)
    # data.in_memory: views indexed out of one in-memory uint8 tensor (data/tensor_loader.py)
    make_dl, kept = view_loader_factory(cfg)(paths, pre, cfg, device, skips, crops)
    tta, seed = cfg["tta"], int(cfg["seed"])
    plan = view_plan(tta, seed)
    what = f"TTA {pre['key']} fold {pre['fold']}" if "key" in pre and "fold" in pre else "TTA"
    views = predict_views(model, make_dl, plan, seed, device, what)
    out = np.full((len(paths), views.shape[-1]), np.nan)
    out[kept] = combine_views(views, tta["mode"])
    return out


def predict_key(key_dir: str | Path, test_root: str | Path | None, cfg: dict,
                fallback: str | None = None) -> dict:
    """Predict one key of a run: test.csv (fold-averaged) and, with tta.on_oof, oof_tta + cv_tta."""
    key_dir, key = Path(key_dir), Path(key_dir).name
    if fallback not in FALLBACKS:
        raise FashiontagError(f"--fallback must be one of {FALLBACKS[1:]}, got {fallback!r}")
    if split_mode(cfg) == "separate" and not cfg["worn"]["group"]:
        raise FashiontagError("worn.mode=separate predicts each group's sub-run: use recipes.separate.predict "
                              "(what `fashiontag predict` calls)")
    device = device_of(cfg)
    tta = cfg["tta"]
    on_oof = bool(tta["enabled"] and tta["on_oof"])
    questions = pd.DataFrame(columns=["image", "key"])
    if test_root is not None:
        questions = read_questions(test_root, read_attributes(test_root))
        questions = questions[questions["key"] == key].reset_index(drop=True)
        questions = restrict_to_group(cfg, test_root, questions, allow_empty=True)  # separate-mode group run
        if questions.empty:
            log.warning("%s: no question of this key in %s", key, test_root)
    test_paths = [str(Path(test_root) / img) for img in questions["image"]] if test_root else []
    test_crops = crops_for(cfg, test_root, questions) if test_root else None  # worn.mode=crop only
    train_root = Path(cfg["data"]["root"])
    skips = SkipReport(skip=True)
    fold_probs, oof_parts, used = [], [], []
    for k, fdir, model, pre in iter_fold_models(key_dir, device):
        if test_paths:
            probs = predict_fold(model, pre, test_paths, cfg, device, skips if not used else SkipReport(True),
                                 test_crops)
            if not used:
                stop_or_fallback(skips, key_dir / "bad_test_images.csv", fallback)
            fold_probs.append(probs)
        if on_oof:
            require_files(fdir, ["oof.csv"], key_dir)
            oof = read_prob_table(fdir / "oof.csv", need=("image", "key", "fold", "label"))
            paths = [str(train_root / img) for img in oof["image"]]
            # Training images must still be readable: a fallback here would fake the CV score.
            probs = predict_fold(model, pre, paths, cfg, device, SkipReport(skip=False),
                                 crops_for(cfg, train_root, oof))
            part = with_probs(oof[["image", "key", "fold", "label"]], probs)
            atomic_write_csv(fdir / "oof_tta.csv", part)
            oof_parts.append(part)
        used.append(k)
        log.info("%s fold %d done (%d test, %d oof images)", key, k, len(test_paths),
                 len(oof_parts[-1]) if on_oof else 0)
    record = {"key": key, "test_root": str(test_root) if test_root else None, "folds": used,
              "tta": tta, "views": view_plan(tta, int(cfg["seed"])), "seed": cfg["seed"],
              "n_test": len(test_paths), "n_unreadable": len(skips), "fallback": fallback}
    if fold_probs:
        avg = np.mean(np.stack(fold_probs), axis=0)
        bad = ~np.isfinite(avg).all(axis=1)
        avg[bad] = 1.0 / avg.shape[1]  # only reached with --fallback uniform
        atomic_write_csv(key_dir / "test.csv", with_probs(questions[["image", "key"]], avg))
    if oof_parts:
        merged = pd.concat(oof_parts, ignore_index=True)
        cv = write_oof_and_cv(key_dir, merged, tta=True)
        record["cv_tta"] = {m: cv[m] for m in ("mAP", "basic_precision", "accuracy", "log_loss")}
        log.info("%s: cv with TTA mAP %.4f (%d rows)", key, cv["mAP"], cv["n"])
    atomic_write_json(key_dir / "predict.json", record)
    return record


def predict_run(exp_dir: str | Path, test_root: str | Path | None, cfg: dict | None = None,
                keys: list[str] | None = None, fallback: str | None = None,
                overrides: list[str] | None = None,
                predict_one: Callable[[Path, str | Path | None, dict, str | None], dict] | None = None,
                ) -> dict[str, dict]:
    """Predict every (or the given) key of a training run; cfg None = each key's own config + overrides.
    `predict_one(key_dir, test_root, key_cfg, fallback)` replaces predict_key (the separate mode's merge)."""
    exp_dir = Path(exp_dir)
    all_keys = list_keys(exp_dir)
    keys = keys or all_keys
    absent = [k for k in keys if k not in all_keys]
    if absent:
        raise RunError(f"{exp_dir} has no trained key(s) {absent}; it has {all_keys}")
    one = predict_one or predict_key
    return {k: one(exp_dir / k, test_root, run_config(exp_dir / k, cfg, overrides), fallback) for k in keys}
