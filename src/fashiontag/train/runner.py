"""`fashiontag train`: keys x folds of a dataset into runs/<exp>/<key>/, then the per-key merge.

Per key: the fold assignment (folds/<dataset>.csv, written once if missing, never regenerated), the image
cache (decoded once for all folds), the key's config.yaml and folds.csv; then every requested fold (serially,
or with --gpus N one worker process per GPU, train/worker.py, started from that config.yaml), then oof.csv +
cv.json over the finished folds. The caller's config is never changed; `train_run` returns a TrainResult.
Launched by torchrun / accelerate launch (WORLD_SIZE > 1), every process trains each fold data-parallel
(train/distributed.py): rank 0 prepares and writes, the others read what it wrote and wait at barriers.
"""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fashiontag.core.config import save_config
from fashiontag.core.errors import FashiontagError
from fashiontag.core.files import atomic_write_csv, atomic_write_json
from fashiontag.core.skips import SkipReport
from fashiontag.data.cache import build_cache
from fashiontag.data.folds import dataset_name, folds_path, load_folds, make_folds, write_folds
from fashiontag.data.loaders import soft_targets
from fashiontag.data.shared_cache import share_images
from fashiontag.data.worn_modes import crops_for, restrict_to_group, split_mode
from fashiontag.fashionai.fold_file import read_fold_file
from fashiontag.fashionai.format import Dataset, load_dataset
from fashiontag.fashionai.runs import cv_summary
from fashiontag.train import distributed
from fashiontag.train.fold import KeyData, fold_dir_of, train_fold

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What `train_run` made: the run directory and each key's CV summary (None: no fold finished, or not
    merged)."""

    run_dir: Path
    cv: dict[str, dict | None]


def exp_name(cfg: dict, config: str | Path | None = None) -> str:
    """The run name: the config's `exp`, else the experiment config's file stem (`config`, else the one the
    config was loaded from), else base."""
    if cfg["exp"]:
        return str(cfg["exp"])
    # config_source is load_config's record of the file read (metadata, not a setting): absent in hand-made dicts
    source = config or (cfg["config_source"] if "config_source" in cfg else None)
    return Path(source).stem if source else "base"


def parse_folds(spec: str | None, available: list[int]) -> list[int]:
    """`all`, `0`, `0,2` -> fold indices, each checked against the folds file."""
    if spec is None or str(spec).strip() in ("", "all"):
        return list(available)
    try:
        folds = [int(s) for s in str(spec).split(",") if s.strip()]
    except ValueError:
        raise FashiontagError(f"--folds must be 'all' or comma-separated fold numbers, got {spec!r}") from None
    missing = [f for f in folds if f not in available]
    if missing:
        raise FashiontagError(f"fold(s) {missing} not in the folds file (it has {available})")
    return folds


def fold_table(dataset: Dataset, cfg: dict, keys: list[str]) -> pd.DataFrame:
    """The selected keys' label rows with their fold, from folds/<dataset>.csv (made once if missing)."""
    path = folds_path(cfg)
    if not path.exists():
        data = cfg["data"]
        log.info("no fold file for %s: writing %s (%d folds, seed %d)", dataset.name, path, data["n_folds"],
                 data["fold_seed"])
        # With data.skip_bad a missing image still gets a fold; the image cache then skips and reports it.
        folds = make_folds(dataset.root, dataset.labels, k=int(data["n_folds"]), seed=int(data["fold_seed"]),
                           skip_missing=bool(data["skip_bad"]))
        write_folds(path, folds)
    labels = dataset.labels[dataset.labels["key"].isin(keys)].reset_index(drop=True)
    return load_folds(path, labels)


def _check_key_folds(key_dir: Path, rows: pd.DataFrame, force: bool) -> None:
    """folds.csv of a key dir records the split its folds were trained on; a different split is refused."""
    path = key_dir / "folds.csv"
    mine = rows[["image", "key", "fold", "y"]].reset_index(drop=True)
    if path.exists() and not force:
        old = read_fold_file(path, need=("image", "fold"))
        merged = mine.merge(old[["image", "fold"]], on="image", how="outer", suffixes=("", "_old"))
        if merged["fold"].isna().any() or merged["fold_old"].isna().any() or \
                (merged["fold"] != merged["fold_old"]).any():
            raise FashiontagError(f"{path}: this run was trained on a different fold assignment; use another "
                                  "--exp, or --force to retrain every fold of the key")
        return
    atomic_write_csv(path, mine)


def prepare_key(dataset: Dataset, key: str, rows: pd.DataFrame, cfg: dict, run_dir: Path) -> KeyData:
    """Key dir, its config and folds, the image cache (unreadable images skipped or fatal per data.skip_bad)."""
    key_dir = run_dir / key
    key_dir.mkdir(parents=True, exist_ok=True)
    rows = rows.reset_index(drop=True)
    main = distributed.is_main()  # under DDP the other ranks only read what rank 0 wrote (rank0_first)
    if main:
        _check_key_folds(key_dir, rows, bool(cfg["train"]["force"]))
        save_config(cfg, key_dir / "config.yaml")
    cache_cfg, train = cfg["cache"], cfg["train"]
    size = int(cache_cfg["size"] or max(int(s) for s in train["stages"]))
    workers = int(cache_cfg["workers"] or max(1, int(train["num_workers"])))
    skips = SkipReport(skip=bool(cfg["data"]["skip_bad"]))
    cache = build_cache(
        [dataset.image_path(p) for p in rows["image"]], size,
        Path(cache_cfg["dir"]) / dataset_name(dataset.root),
        crops=crops_for(cfg, dataset.root, rows),  # worn.mode=crop: person boxes (data/worn_modes.py), else None
        name=key, resize=cache_cfg["resize"],
        pad_value=cache_cfg["pad_value"], workers=workers, skips=skips, lines=list(rows["line"]),
    )
    if main:
        skips.write(key_dir / "skipped_images.csv")
    targets = soft_targets(list(rows["label"]), float(train["maybe_weight"]))
    return KeyData(key, list(dataset.attributes[key]), rows, cache, targets, key_dir)


def merge_key(key_dir: Path, all_folds: list[int]) -> dict | None:
    """oof.csv + cv.json over the key's finished folds (cv.json says whether every fold is in)."""
    done = [f for f in all_folds if (fold_dir_of(key_dir, f) / "done.json").exists()]
    if not done:
        return None
    oof = pd.concat([pd.read_csv(fold_dir_of(key_dir, f) / "oof.csv", dtype={"image": str, "key": str,
                                                                             "label": str}) for f in done],
                    ignore_index=True)
    atomic_write_csv(key_dir / "oof.csv", oof)
    cv = cv_summary(oof, key_dir.name)
    cv["complete"] = len(done) == len(all_folds)
    cv["folds_done"] = done
    atomic_write_json(key_dir / "cv.json", cv)
    missing = sorted(set(all_folds) - set(done))
    log.info("%s: CV over folds %s: mAP %.4f basic_precision %.4f accuracy %.4f log_loss %.4f%s",
             key_dir.name, done, cv["mAP"], cv["basic_precision"], cv["accuracy"], cv["log_loss"],
             f" (folds {missing} not trained yet)" if missing else "")
    return cv


def _run_parallel(jobs: list[tuple[str, int]], run_dir: Path, n_gpus: int) -> None:
    """A queue of fold jobs, one worker process per GPU (CUDA_VISIBLE_DEVICES): train/worker.py, given the
    key's resolved config.yaml that _prepare saved."""
    pending, running, failed = list(jobs), {}, []
    free = list(range(n_gpus))
    while pending or running:
        while pending and free:
            key, fold = pending.pop(0)
            gpu = free.pop(0)
            out = fold_dir_of(run_dir / key, fold)
            out.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "fashiontag.train.worker", str(run_dir / key / "config.yaml"), key, str(fold)]
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(gpu)}
            fh = open(out / "worker.log", "ab")  # noqa: SIM115 - closed when the job ends
            log.info("GPU %d: %s fold %d (log: %s)", gpu, key, fold, out / "worker.log")
            running[subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)] = (key, fold, gpu, fh)
        time.sleep(1.0)
        for proc in [p for p in running if p.poll() is not None]:
            key, fold, gpu, fh = running.pop(proc)
            fh.close()
            free.append(gpu)
            if proc.returncode != 0:
                failed.append(f"{key} fold {fold} (exit {proc.returncode}, see "
                              f"{fold_dir_of(run_dir / key, fold) / 'worker.log'})")
    if failed:
        raise FashiontagError("training failed for " + "; ".join(failed))


def train_run(data_root: str | Path, cat: str, folds_spec: str | None, cfg: dict, *, gpus: int = 1,
              merge: bool = True, extra_cbs: tuple = ()) -> TrainResult:
    """Train keys `cat` (a key, short name, comma list or all) x folds into runs_dir/<exp>/.

    `cfg` is not changed: the run's copy records data.root and exp (see `exp_name`), and is what each key's
    config.yaml saves. With merge, each key's folds are merged into oof.csv + cv.json.
    """
    cfg = copy.deepcopy(cfg)
    cfg["data"]["root"] = str(data_root)
    exp = exp_name(cfg)
    cfg["exp"] = exp
    run_dir = Path(cfg["runs_dir"]) / exp
    distributed.setup(cfg, gpus)  # joins the process group under torchrun / accelerate launch; else nothing
    if split_mode(cfg) == "separate" and not cfg["worn"]["group"]:
        raise FashiontagError("worn.mode=separate trains one sub-run per group: use recipes.separate.train "
                              "(what `fashiontag train` calls)")
    # Under DDP rank 0 writes the folds file and image caches first; the others then read them.
    prepared, jobs = distributed.rank0_first(_prepare, data_root, cat, folds_spec, cfg, run_dir)
    log.info("run %s: %d key(s), %d fold job(s) -> %s", exp, len(prepared), len(jobs), run_dir)

    n_gpus = _usable_gpus(gpus)
    todo = [(k, f) for k, f in jobs
            if cfg["train"]["force"] or not (fold_dir_of(run_dir / k, f) / "done.json").exists()]
    if n_gpus > 1 and len(todo) > 1:
        _run_parallel(todo, run_dir, n_gpus)
        # children retrained what was asked; the merge must not retrain again
    else:
        for key, fold in jobs:
            train_fold(prepared[key], fold, cfg, extra_cbs)
    results: dict[str, dict | None] = {}
    if merge and distributed.is_main():
        for key, kd in prepared.items():
            results[key] = merge_key(kd.key_dir, sorted(int(f) for f in np.unique(kd.table["fold"])))
    distributed.barrier()  # the other ranks leave once rank 0 has merged
    return TrainResult(run_dir, results)


def _prepare(data_root: str | Path, cat: str, folds_spec: str | None, cfg: dict,
             run_dir: Path) -> tuple[dict[str, KeyData], list[tuple[str, int]]]:
    """Labels, folds, each key's dir and image cache; the (key, fold) jobs asked for."""
    label_skips = SkipReport(skip=bool(cfg["data"]["skip_bad"]))
    dataset = load_dataset(data_root, skips=label_skips)
    if distributed.is_main():
        label_skips.write(run_dir / "skipped_labels.csv")
    keys = dataset.select_keys(cat)
    if not keys:
        raise FashiontagError(f"{data_root}: no labelled keys to train")
    table = fold_table(dataset, cfg, keys)
    table = restrict_to_group(cfg, dataset.root, table)  # a separate-mode group sub-run: its rows only
    share_images(dataset, table, cfg)  # images labelled for several keys: one cache they all read
    prepared: dict[str, KeyData] = {}
    jobs: list[tuple[str, int]] = []
    for key in keys:
        rows = table[table["key"] == key]
        prepared[key] = prepare_key(dataset, key, rows, cfg, run_dir)
        available = sorted(int(f) for f in np.unique(rows["fold"]))
        jobs += [(key, f) for f in parse_folds(folds_spec, available)]
    return prepared, jobs


def _usable_gpus(requested: int) -> int:
    if requested <= 1:
        return 1
    import torch

    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available < 1:
        log.warning("--gpus %d but no CUDA GPU: training serially on the CPU", requested)
        return 1
    if available < requested:
        log.warning("--gpus %d but only %d GPU(s) visible: using %d", requested, available, available)
    return min(requested, available)
