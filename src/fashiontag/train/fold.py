"""Train one key on one fold: the seed recipe end to end, resumable, into runs/<exp>/<key>/fold_<k>/.

Files (docs/ARCHITECTURE.md): config.yaml first, then per epoch log.csv (and ckpt/last.pth, when
train/checkpoints.py says), at the end model.pth, preprocess.json, oof.csv, lr_find.png, curves.png,
confusion.png, train.log, and done.json last.
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from fastai.torch_core import set_seed

from fashiontag.core.config import save_config
from fashiontag.core.devices import describe_device, resolve_device, tune_kernels
from fashiontag.core.errors import ConfigError, FashiontagError
from fashiontag.core.figures import plot_confusion, plot_curves, plot_lr_find
from fashiontag.core.files import atomic_save_torch, atomic_write_csv, atomic_write_json, read_json
from fashiontag.core.identity import code_identity
from fashiontag.core.logs import add_file_handler
from fashiontag.data.cache import ImageCache
from fashiontag.data.dataloader import release_workers
from fashiontag.data.row_loader import row_dataloaders
from fashiontag.data.tensor_loader import fold_loader_factory
from fashiontag.fashionai.metric import key_metrics
from fashiontag.fashionai.probs import with_probs
from fashiontag.models.build import build_model, head_spec, model_state, weight_kwargs
from fashiontag.train import distributed
from fashiontag.train.checkpoints import Checkpointer, CheckpointWriter
from fashiontag.train.feature_cache import (
    cached_features,
    check_feature_cache_config,
    head_only,
)
from fashiontag.train.learner import make_learner
from fashiontag.train.partial_fit import partial_learner, partial_on
from fashiontag.train.progress import EpochLogger, set_progress, use_bars
from fashiontag.train.resume import (
    CKPT_DIR,
    FoldState,
    check_same_config,
    load_checkpoint,
    restore,
    resume_fit,
)
from fashiontag.train.schedule import find_lr, plan_phases, prepare_phase, run_phase

log = logging.getLogger(__name__)


@dataclass
class KeyData:
    """One key's training material: label rows (with `fold`) aligned with the image cache rows."""

    key: str
    values: list[str]
    table: pd.DataFrame  # image, key, label, y, line, fold; row i is cache row i
    cache: ImageCache
    targets: np.ndarray  # (N, n_values) training targets (one-hot or 'm'-soft)
    key_dir: Path


def fold_dir_of(key_dir: Path, fold: int) -> Path:
    return Path(key_dir) / f"fold_{fold}"


def train_fold(kd: KeyData, fold: int, cfg: dict, extra_cbs: tuple = ()) -> dict:
    """Train (or resume, or skip when done) fold `fold` of `kd.key`; returns the fold's done.json content.

    Under DDP (train/distributed.py) every rank trains; rank 0 alone writes, and returns done.json's content
    (the others {}) once all ranks are through.
    """
    fold_dir = fold_dir_of(kd.key_dir, fold)
    done_path = fold_dir / "done.json"
    main = distributed.is_main()
    if cfg["train"]["force"] and fold_dir.exists() and main:
        log.info("%s fold %d: --force, retraining from scratch", kd.key, fold)
        shutil.rmtree(fold_dir)
    distributed.barrier()  # every rank sees the same fold dir (and checkpoint) from here on
    if done_path.exists():
        check_same_config(fold_dir, cfg)
        log.info("%s fold %d: already done (%s); --force to retrain", kd.key, fold, done_path)
        return read_json(done_path)
    ckpt = load_checkpoint(fold_dir)
    if ckpt is not None:
        check_same_config(fold_dir, cfg)
    if not main:
        done = _train(kd, fold, cfg, fold_dir, ckpt, extra_cbs)
        distributed.barrier()  # rank 0 is writing the fold's files
        return done
    fold_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, fold_dir / "config.yaml")
    handler = add_file_handler(fold_dir / "train.log")
    try:
        done = _train(kd, fold, cfg, fold_dir, ckpt, extra_cbs)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    distributed.barrier()
    return done


def _choose_lr(learn, train: dict, fold_dir: Path, first_phase) -> tuple[float, str]:
    lr_cfg = train["lr"]
    auto = isinstance(lr_cfg, str) and lr_cfg.strip().lower() == "auto"
    if auto and not train["lr_find"]:
        raise ConfigError("train.lr: auto needs train.lr_find: true (or give a number, e.g. --set train.lr=1e-3)")
    if not auto:
        try:
            fixed = float(lr_cfg)
        except (TypeError, ValueError):
            raise ConfigError(f"train.lr must be a number or auto, got {lr_cfg!r}") from None
    if not train["lr_find"]:
        return fixed, "config"
    prepare_phase(learn, first_phase)  # sweep in the first phase's mode (frozen: the head only)
    suggested = find_lr(learn, train)
    lr = suggested if auto else fixed
    plot_lr_find(learn.recorder, lr, fold_dir / "lr_find.png")
    return lr, ("lr_find " + str(train["lr_find_suggest"])) if auto else "config"


def _train(kd: KeyData, fold: int, cfg: dict, fold_dir: Path, ckpt: dict | None, extra_cbs: tuple) -> dict:
    t0 = time.time()
    train, mcfg = cfg["train"], cfg["model"]
    folds = kd.table["fold"].to_numpy()
    valid_rows = np.flatnonzero((folds == fold) & kd.cache.ok)
    train_rows = np.flatnonzero((folds != fold) & kd.cache.ok)
    if not len(valid_rows) or not len(train_rows):
        raise FashiontagError(f"{kd.key} fold {fold}: {len(train_rows)} training and {len(valid_rows)} "
                              "validation images; both must be non-empty (check the folds file)")
    # Seeds everywhere, but cudnn keeps benchmark mode: deterministic kernels would cost GPU throughput.
    seed = int(cfg["seed"]) + fold + distributed.seed_offset()
    set_seed(seed, reproducible=False)
    phases = plan_phases(train)
    device = distributed.rank_device(resolve_device(train["device"]))
    tune_kernels(device)  # cudnn autotuning on CUDA, the same switch scripts/bench.py times
    timm_kwargs, weights_source = weight_kwargs(mcfg["backbone"], bool(mcfg["pretrained"]), mcfg["weights"])
    head = head_spec(mcfg)
    model, tcfg = build_model(mcfg["backbone"], len(kd.values), head, timm_kwargs)
    mean, std = [float(v) for v in tcfg["mean"]], [float(v) for v in tcfg["std"]]
    log.info("%s fold %d: %d train / %d valid images, %s (%s), %s, phases: %s", kd.key, fold, len(train_rows),
             len(valid_rows), mcfg["backbone"], weights_source, describe_device(device),
             ", ".join(p.name for p in phases))

    dls_cache: dict[int, object] = {}
    on_features = bool(train["feature_cache"])
    if on_features:  # the head alone, on body features computed once (train/feature_cache.py)
        check_feature_cache_config(train)
        feats = cached_features(model, kd.cache, cfg, phases[0].size, mean, std, device)
        dls_cache[phases[0].size] = row_dataloaders(list(feats), kd.targets, train_rows, valid_rows,
                                                    int(train["batch_size"]), device)

    def dls_for(size: int):
        if size not in dls_cache:
            for done in dls_cache.values():  # an earlier stage's loaders: stop their idle worker processes
                release_workers(done)
            # data.in_memory: batches indexed out of one in-memory uint8 tensor (data/tensor_loader.py)
            make = fold_loader_factory(cfg)
            dls_cache[size] = make(
                kd.cache, kd.targets, train_rows, valid_rows, size, mean, std, cfg["augment"],
                int(train["batch_size"]), device, int(train["num_workers"]))
        return dls_cache[size]

    if partial_on(train):  # the last body stages + head on cached early-stage activations (train/partial_fit.py)
        learn, dls_cache[phases[0].size] = partial_learner(model, kd.cache, kd.targets, train_rows, valid_rows, cfg,
                                                           phases[0].size, mean, std, device, fold_dir)
    else:
        learn = make_learner(head_only(model) if on_features else model, dls_for(phases[0].size), train,
                             fold_dir, device, head_only=on_features)
    set_progress(learn, use_bars(train["progress"]))
    state = FoldState()
    if ckpt is not None:
        state = restore(learn, ckpt)
        log.info("%s fold %d: resuming at phase %d (%s) after epoch %d", kd.key, fold, state.phase,
                 phases[min(state.phase, len(phases) - 1)].name, state.epochs_done)
    writer = CheckpointWriter(fold_dir, float(train["checkpoint_every_s"]), dls_cache)
    if state.lr is None:
        # Under DDP the LR finder runs on rank 0 alone, outside distrib_ctx, and the rate is broadcast: fastai's
        # finder does not work inside distrib_ctx. Its Learner.save of the pre-sweep weights is a no-op on ranks
        # > 0, so only rank 0 reloads them, and Learner.load has a barrier the other ranks never reach (a hang,
        # seen on CPU). `solo` hides WORLD_SIZE so fastai neither all-gathers losses nor waits at that barrier.
        # The sweep uses one process's batch (train.batch_size), not the global one.
        choice = None
        if distributed.is_main():
            with distributed.solo():
                choice = _choose_lr(learn, train, fold_dir, phases[0])
        state.lr, state.lr_source = distributed.broadcast(choice)
        if distributed.is_main():
            writer.save(learn, state, moments=False)
    log.info("%s fold %d: lr %.3g (%s)", kd.key, fold, state.lr, state.lr_source)
    # Seeded again: filling a cache or sweeping the LR draws random numbers that a warm cache or a resumed
    # fold does not, and the fit must start from the same streams either way (a resume restores its own).
    set_seed(seed, reproducible=False)
    for dls in dls_cache.values():  # fastai drew these loaders' shuffling streams when it built them
        for dl in dls.loaders:
            dl.rng = random.Random(random.randint(0, 2**32 - 1))
    # DDP under torchrun / accelerate launch, else nothing; the writer waits for its last checkpoint
    with writer, distributed.fit_ctx(learn, device):
        _fit(learn, fold_dir, phases, dls_for, train, state, ckpt, extra_cbs, writer)
    if not distributed.is_main():
        return {}

    with distributed.solo():  # the other ranks wait at a barrier meanwhile
        return _finish(kd, fold, cfg, fold_dir, learn, dls_for(phases[-1].size).valid, valid_rows, state,
                       dict(phases=phases, weights=weights_source, head=head, mean=mean, std=std, device=device,
                            n_train=len(train_rows), seconds=time.time() - t0, model=model))


def _fit(learn, fold_dir: Path, phases, dls_for, train: dict, state: FoldState, ckpt: dict | None,
         extra_cbs: tuple, writer: CheckpointWriter) -> None:
    """Every phase not done yet, from the checkpoint's position; rank 0 alone logs and checkpoints."""
    main = distributed.is_main()
    for phase in phases[state.phase:]:
        if state.epochs_done >= phase.epochs:  # killed right after the phase's last checkpoint
            state.phase, state.epochs_done = phase.index + 1, 0
            continue
        start = state.epochs_done

        def enter(phase=phase):
            learn.dls = dls_for(phase.size)
            prepare_phase(learn, phase)

        if ckpt is not None:  # the first phase after a restart: optimizer and random streams as they were
            resume_fit(learn, ckpt, start, enter, dls_for, distributed.seed_offset())
            ckpt = None
        else:
            enter()
        first_epoch = sum(p.epochs for p in phases[: phase.index])
        cbs = [EpochLogger(phase, state.rows, fold_dir / "log.csv", start, first_epoch),
               Checkpointer(writer, state, start)] if main else []
        run_phase(learn, phase, state.lr, train, start_epoch=start, cbs=[*cbs, *extra_cbs])
        state.phase, state.epochs_done = phase.index + 1, 0


def _finish(kd: KeyData, fold: int, cfg: dict, fold_dir: Path, learn, valid_dl, valid_rows, state: FoldState,
            info: dict) -> dict:
    """Out-of-fold probabilities, weights, preprocessing, plots; done.json last, then drop the checkpoint."""
    probs = learn.get_preds(dl=valid_dl)[0].float().numpy().astype(np.float64)
    probs /= probs.sum(axis=1, keepdims=True)  # exact row sums after the float32 softmax
    valid = kd.table.iloc[valid_rows]
    oof = with_probs(valid[["image", "key"]].assign(fold=fold, label=valid["label"].to_numpy()), probs)
    atomic_write_csv(fold_dir / "oof.csv", oof)
    atomic_save_torch(fold_dir / "model.pth", model_state(info["model"]))  # body + head, whatever trained
    phases = info["phases"]
    preprocess = {
        "backbone": cfg["model"]["backbone"], "key": kd.key, "values": list(kd.values),
        "n_out": len(kd.values), "size": phases[-1].size, "cache_size": kd.cache.size,
        "resize": cfg["cache"]["resize"], "pad_value": cfg["cache"]["pad_value"],
        "mean": info["mean"], "std": info["std"], "head": info["head"], "augment": cfg["augment"],
        "fold": fold, "weights": info["weights"],
    }
    atomic_write_json(fold_dir / "preprocess.json", preprocess)
    plot_curves(state.rows, fold_dir / "curves.png")
    y = valid["y"].to_numpy()
    plot_confusion(y, probs.argmax(axis=1), kd.values, fold_dir / "confusion.png")
    metrics = key_metrics(probs, list(valid["label"]))
    done = {
        "key": kd.key, "fold": fold, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_train": info["n_train"], "n_valid": len(valid_rows), "epochs": sum(p.epochs for p in phases),
        "phases": [p.as_dict() for p in phases], "lr": state.lr, "lr_source": state.lr_source,
        "weights": info["weights"], "device": str(info["device"]), "precision": getattr(learn, "precision", "fp32"),
        "seconds": round(info["seconds"], 1), "metrics": metrics, "code": code_identity(),
    }
    atomic_write_json(fold_dir / "done.json", done)
    shutil.rmtree(fold_dir / CKPT_DIR, ignore_errors=True)
    log.info("%s fold %d done in %.0fs: mAP %.4f accuracy %.4f log_loss %.4f", kd.key, fold, info["seconds"],
             metrics["mAP"], metrics["accuracy"], metrics["log_loss"])
    return done
