"""separate mode: one model per key and group (worn, hanger), merged back into one ordinary-looking run.

Layout (runs/<exp>/<key>/ stays what every other stage reads):

    runs/<exp>/groups/<group>/<key>/fold_<k>/...   each group's sub-run: an ordinary training run of the
                                                   group's rows on the same folds file (`groups` is not
                                                   a key directory, so reports and submit skip it)
    runs/<exp>/<key>/{config.yaml, folds.csv, oof.csv, cv.json}   the groups merged (sorted by fold,
                                                   image); cv.json adds each group's scores
    runs/<exp>/<key>/{test.csv, oof_tta.csv, cv_tta.json, predict.json}   after predict, merged likewise
                                                   (test.csv in question order)

A sub-run is the same config with `worn.group` set, `exp` = the group and `runs_dir` = runs/<exp>/groups,
so the training runner and predictor need only the `restrict_to_group` hook to run it.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pandas as pd

from fashiontag.core.files import atomic_write_csv, atomic_write_json, read_json
from fashiontag.data.worn_modes import GROUPS, merge_groups, split_for, split_mode
from fashiontag.fashionai.fold_file import read_fold_file
from fashiontag.fashionai.format import read_attributes, read_questions
from fashiontag.fashionai.runs import (
    RunError,
    cv_summary,
    load_oof,
    load_test,
    write_derived_config,
    write_oof_and_cv,
)
from fashiontag.infer.predict import predict_key, predict_run
from fashiontag.train.runner import TrainResult, exp_name, train_run

log = logging.getLogger(__name__)

SUBDIR = "groups"


def group_cfg(cfg: dict, group: str, runs_dir: Path) -> dict:
    out = copy.deepcopy(cfg)
    out.pop("run", None)  # the merged key's derived-run record is not the sub-run's
    out["worn"]["group"] = group
    out["exp"] = group
    out["runs_dir"] = str(runs_dir)
    return out


def train_separate(data_root: str | Path, cat: str, folds_spec: str | None, cfg: dict, run_dir: Path, *,
                   gpus: int = 1, merge: bool = True, extra_cbs: tuple = ()) -> TrainResult:
    """Train every group as a sub-run (same folds), then merge each key's groups into run_dir/<key>/."""
    split_for(cfg, data_root)  # detect once up front; both sub-runs read the cached split file
    sub_runs = run_dir / SUBDIR
    keys: list[str] = []
    for group in GROUPS:
        log.info("worn.mode=separate: training the %s group into %s", group, sub_runs / group)
        result = train_run(data_root, cat, folds_spec, group_cfg(cfg, group, sub_runs), gpus=gpus, merge=merge,
                           extra_cbs=extra_cbs)
        keys += [k for k in result.cv if k not in keys]
    if not merge:
        return TrainResult(run_dir, {})
    attributes = read_attributes(data_root)
    return TrainResult(run_dir, {key: merge_trained_key(run_dir / key, key, sub_runs, cfg, attributes[key])
                                 for key in keys})


def _group_key_dirs(sub_runs: Path, key: str) -> dict[str, Path]:
    return {g: sub_runs / g / key for g in GROUPS}


def merge_trained_key(key_dir: Path, key: str, sub_runs: Path, cfg: dict, values: list[str]) -> dict | None:
    """oof.csv, cv.json (+ per-group scores), folds.csv and config.yaml of the merged key."""
    dirs = _group_key_dirs(sub_runs, key)
    parts = {g: load_oof(d) for g, d in dirs.items() if (d / "oof.csv").exists()}
    if not parts:
        return None
    key_dir.mkdir(parents=True, exist_ok=True)
    folds = pd.concat([read_fold_file(d / "folds.csv") for d in dirs.values() if (d / "folds.csv").exists()],
                      ignore_index=True)
    order = folds.sort_values(["fold", "image"], kind="stable")  # fold by fold, like merge_key's oof.csv
    atomic_write_csv(key_dir / "folds.csv", order.reset_index(drop=True))
    done = pd.concat(list(parts.values()), ignore_index=True)
    merged = merge_groups(order[order["image"].isin(done["image"])], parts).drop(columns="group")
    cv = write_oof_and_cv(key_dir, merged)
    cv["groups"] = {g: cv_summary(p, key) for g, p in parts.items()}
    cv["complete"] = all(read_json(d / "cv.json").get("complete", False) for d in dirs.values()
                         if (d / "cv.json").exists()) and len(parts) == len(GROUPS)
    atomic_write_json(key_dir / "cv.json", cv)
    write_derived_config(key_dir, cfg, "split_separate", [str(d) for d in dirs.values()], values)
    log.info("%s (separate): merged CV mAP %.4f accuracy %.4f over %d rows (%s)", key, cv["mAP"], cv["accuracy"],
             cv["n"], ", ".join(f"{g} {c['n']}" for g, c in cv["groups"].items()))
    return cv


def predict_separate(key_dir: Path, test_root: str | Path | None, cfg: dict, fallback: str | None) -> dict:
    """Each group's sub-run predicts its own questions; test.csv (and oof_tta.csv) merged in question order."""
    key = key_dir.name
    sub_runs = key_dir.parent / SUBDIR
    dirs = _group_key_dirs(sub_runs, key)
    missing = [str(d) for d in dirs.values() if not d.is_dir()]
    if missing:
        raise RunError(f"{key_dir}: separate-mode group run(s) missing: {', '.join(missing)} "
                       "(made by the training step with worn.mode=separate)", ["train"])
    records = {g: predict_key(d, test_root, group_cfg(cfg, g, sub_runs), fallback) for g, d in dirs.items()}
    if test_root is not None:
        questions = read_questions(test_root, read_attributes(test_root))
        questions = questions[questions["key"] == key].reset_index(drop=True)
        # A group without questions writes no test.csv (an old one may be left from another test root).
        parts = {g: load_test(d) for g, d in dirs.items() if records[g].get("n_test")}
        merged = merge_groups(questions, parts).drop(columns=["group", "line"], errors="ignore")
        atomic_write_csv(key_dir / "test.csv", merged)
    record = {"key": key, "mode": "separate", "test_root": str(test_root) if test_root else None,
              "groups": records, "n_test": sum(int(r.get("n_test") or 0) for r in records.values()),
              "folds": sorted({int(k) for r in records.values() for k in r.get("folds", [])})}
    tta_parts = {g: load_oof(d, tta=True) for g, d in dirs.items() if "cv_tta" in records[g]}
    if tta_parts:
        order = pd.read_csv(key_dir / "oof.csv", dtype={"image": str, "key": str})[["image", "key"]]
        done = pd.concat(list(tta_parts.values()), ignore_index=True)
        merged = merge_groups(order[order["image"].isin(done["image"])], tta_parts).drop(columns="group")
        cv = write_oof_and_cv(key_dir, merged, tta=True)
        record["cv_tta"] = {m: cv[m] for m in ("mAP", "basic_precision", "accuracy", "log_loss")}
    atomic_write_json(key_dir / "predict.json", record)
    return record


def _separate(cfg: dict) -> bool:
    return split_mode(cfg) == "separate" and not cfg["worn"]["group"]


def train(data_root: str | Path, cat: str, folds_spec: str | None, cfg: dict, *, gpus: int = 1,
          merge: bool = True, extra_cbs: tuple = ()) -> TrainResult:
    """Train as the config says: worn.mode=separate trains each group (worn, hanger) as its own sub-run
    and merges them; every other mode is one ordinary training run. `cfg` is not changed."""
    if not _separate(cfg):
        return train_run(data_root, cat, folds_spec, cfg, gpus=gpus, merge=merge, extra_cbs=extra_cbs)
    cfg = copy.deepcopy(cfg)
    cfg["data"]["root"] = str(data_root)
    cfg["exp"] = exp_name(cfg)
    run_dir = Path(cfg["runs_dir"]) / cfg["exp"]
    return train_separate(data_root, cat, folds_spec, cfg, run_dir, gpus=gpus, merge=merge, extra_cbs=extra_cbs)


def predict(exp_dir: str | Path, test_root: str | Path | None, cfg: dict | None = None,
            keys: list[str] | None = None, fallback: str | None = None,
            overrides: list[str] | None = None) -> dict[str, dict]:
    """Predict every (or the given) key of a training run; a separate-mode key merges its groups' predictions."""
    return predict_run(exp_dir, test_root, cfg, keys, fallback, overrides, predict_one=_predict_one)


def _predict_one(key_dir: Path, test_root: str | Path | None, cfg: dict, fallback: str | None) -> dict:
    if _separate(cfg):
        return predict_separate(key_dir, test_root, cfg, fallback)
    return predict_key(key_dir, test_root, cfg, fallback)
