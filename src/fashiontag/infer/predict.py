"""`predict`: every fold of a run predicts the test questions (fold-averaged, with TTA) and, with
tta.on_oof, its own out-of-fold images again with TTA so the CV report shows what TTA is worth.

Writes into the training run: <key>/test.csv, <key>/predict.json (what was done), and with on_oof
<key>/fold_k/oof_tta.csv, <key>/oof_tta.csv, <key>/cv_tta.json.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config import apply_overrides, load_yaml, with_base_defaults
from ..data.fashionai import read_attributes, read_questions
from ..data.skips import SkipReport
from ..errors import FashiontagError
from ..io_utils import atomic_write_csv, atomic_write_json
from ..probs import with_probs
from ..runs import (
    RunError,
    fold_dirs,
    list_keys,
    load_folds,
    read_prob_table,
    require_files,
    write_oof_and_cv,
)
from ..split.modes import crops_for, restrict_to_group, split_mode
from .tta import combine_views, predict_views, view_plan

log = logging.getLogger(__name__)

FALLBACKS = (None, "uniform")


def key_config(key_dir: Path, cfg: dict | None, overrides: list[str] | None) -> dict:
    """The config a stage uses for a key: `cfg` when given, else the run's own config.yaml + overrides."""
    if cfg is not None:
        return apply_overrides(cfg, overrides)
    require_files(key_dir, ["config.yaml"], key_dir)
    return apply_overrides(with_base_defaults(load_yaml(key_dir / "config.yaml")), overrides)


def device_of(cfg: dict) -> torch.device:
    from ..train.data import resolve_device

    return resolve_device(cfg.get("train", {}).get("device", "auto"))


def iter_fold_models(key_dir: str | Path, device: torch.device) -> Iterator[tuple[int, Path, nn.Module, dict]]:
    """(k, fold_dir, model, preprocess) for every finished fold, loaded one at a time."""
    from ..models.build import load_fold_model

    key_dir = Path(key_dir)
    folds = fold_dirs(key_dir)
    if not folds:
        raise RunError(f"{key_dir} has no fold_<k> directories (made by `fashiontag train`)")
    expected = sorted(set(load_folds(key_dir)["fold"])) if (key_dir / "folds.csv").exists() else list(folds)
    absent = [k for k in expected if k not in folds]
    if absent:
        log.warning("%s: folds %s are not trained; predictions average the %d trained fold(s)",
                    key_dir.name, absent, len(folds))
    for k, fdir in folds.items():
        require_files(fdir, ["preprocess.json", "model.pth", "done.json"], key_dir)
        model, pre = load_fold_model(fdir, device)
        if pre.get("key") not in (None, key_dir.name):
            raise RunError(f"{fdir}/preprocess.json is for key {pre.get('key')!r}, not {key_dir.name!r}")
        yield k, fdir, model, pre
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()


def loaders(paths: list[str], pre: dict, cfg: dict, device: torch.device, skips: SkipReport, crops=None):
    """make_dl(augment) for `paths` (decoded once into the image cache) and the kept indices."""
    from ..train.data import test_dataloader

    kwargs = dict(batch_size=int(cfg["train"]["batch_size"]), device=device,
                  cache_dir=cfg.get("cache", {}).get("dir") or "cache",
                  num_workers=int(cfg["train"].get("num_workers", 0)), crops=crops)
    built = {False: test_dataloader(paths, pre, augment=False, skips=skips, **kwargs)}

    def make_dl(augment: bool):
        if augment not in built:
            # Built only when a plan has augmented views; it reuses the image cache, whose bad images
            # were already reported by the plain loader.
            built[augment] = test_dataloader(paths, pre, augment=True, skips=SkipReport(skip=True), **kwargs)
        return built[augment]

    return make_dl, list(built[False].kept)


def predict_fold(model: nn.Module, pre: dict, paths: list[str], cfg: dict, device: torch.device,
                 skips: SkipReport, crops=None) -> np.ndarray:
    """(len(paths), n) TTA probabilities of one fold model; rows of unreadable images are NaN.
    crops: split.mode=crop's person box (or None) per path."""
    make_dl, kept = loaders(paths, pre, cfg, device, skips, crops)
    tta = cfg.get("tta", {})
    plan = view_plan(tta, int(cfg.get("seed", 0)))
    views = predict_views(model, make_dl, plan, int(cfg.get("seed", 0)), device)
    out = np.full((len(paths), views.shape[-1]), np.nan)
    out[kept] = combine_views(views, tta.get("mode", "mean"))
    return out


def _bad_images(skips: SkipReport, where: Path, fallback: str | None) -> None:
    """Report unreadable test images; stop unless the user asked for a fallback prediction."""
    if not len(skips):
        return
    report = skips.write(where)
    if fallback is None:
        first = skips.rows[0]
        raise FashiontagError(f"{len(skips)} test image(s) cannot be read (all listed in {report}; first: "
                              f"{first['file']}: {first['reason']}); fix or remove them, or pass "
                              "--fallback uniform to give them uniform probabilities")
    log.warning("%d unreadable test image(s) get uniform probabilities (--fallback %s)", len(skips), fallback)


def predict_key(key_dir: str | Path, test_root: str | Path | None, cfg: dict,
                fallback: str | None = None) -> dict:
    """Predict one key of a run: test.csv (fold-averaged) and, with tta.on_oof, oof_tta + cv_tta."""
    key_dir, key = Path(key_dir), Path(key_dir).name
    if fallback not in FALLBACKS:
        raise FashiontagError(f"--fallback must be one of {FALLBACKS[1:]}, got {fallback!r}")
    if split_mode(cfg) == "separate" and not cfg["split"].get("group"):
        # split.mode=separate: each group's sub-run predicts its questions, merged in question order.
        from ..split.separate import predict_separate

        return predict_separate(key_dir, test_root, cfg, fallback)
    device = device_of(cfg)
    tta = cfg.get("tta", {})
    on_oof = bool(tta.get("enabled", True) and tta.get("on_oof", False))
    questions = pd.DataFrame(columns=["image", "key"])
    if test_root is not None:
        questions = read_questions(test_root, read_attributes(test_root))
        questions = questions[questions["key"] == key].reset_index(drop=True)
        questions = restrict_to_group(cfg, test_root, questions, allow_empty=True)  # separate-mode group run
        if questions.empty:
            log.warning("%s: no question of this key in %s", key, test_root)
    test_paths = [str(Path(test_root) / img) for img in questions["image"]] if test_root else []
    test_crops = crops_for(cfg, test_root, questions) if test_root else None  # split.mode=crop only
    train_root = Path(cfg.get("data", {}).get("root", "."))
    skips = SkipReport(skip=True)
    fold_probs, oof_parts, used = [], [], []
    for k, fdir, model, pre in iter_fold_models(key_dir, device):
        if test_paths:
            probs = predict_fold(model, pre, test_paths, cfg, device, skips if not used else SkipReport(True),
                                 test_crops)
            if not used:
                _bad_images(skips, key_dir / "bad_test_images.csv", fallback)
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
              "tta": tta, "views": view_plan(tta, int(cfg.get("seed", 0))), "seed": cfg.get("seed"),
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
                overrides: list[str] | None = None) -> dict[str, dict]:
    """Predict every (or the given) key of a training run; cfg None = each key's own config + overrides."""
    exp_dir = Path(exp_dir)
    all_keys = list_keys(exp_dir)
    keys = keys or all_keys
    absent = [k for k in keys if k not in all_keys]
    if absent:
        raise RunError(f"{exp_dir} has no trained key(s) {absent}; it has {all_keys}")
    return {k: predict_key(exp_dir / k, test_root, key_config(exp_dir / k, cfg, overrides), fallback)
            for k in keys}
