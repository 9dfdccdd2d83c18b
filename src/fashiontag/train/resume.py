"""Resumable folds: after every epoch the model, the optimizer and the schedule position are saved
atomically to fold_<k>/ckpt/last.pth; starting the same command again continues from there.

The schedule position is (phase index, epochs done in that phase, the chosen lr, the log rows so far).
fastai's fit_one_cycle/fit_sgdr take `start_epoch` and recompute the schedule from the epoch number, so a
resumed phase follows the same learning-rate curve as an uninterrupted one. A config that changed since the
checkpoint is refused (it would silently mix two recipes) unless --force restarts the fold.
"""

from __future__ import annotations

import copy
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.torch_core import get_model

from fashiontag.core.config import load_yaml, with_base_defaults
from fashiontag.core.errors import FashiontagError
from fashiontag.core.files import atomic_save_torch

log = logging.getLogger(__name__)

CKPT_DIR = "ckpt"
CKPT_FILE = "last.pth"
# Only these sections decide what a fold learns; within them, settings that may change between a run and
# its resumption (paths spelled differently, worker counts, display) are ignored.
TRAINING_SECTIONS = ("seed", "data", "cache", "model", "train", "augment")
RUN_ONLY_KEYS = {("train", "force"), ("train", "progress"), ("train", "num_workers"), ("train", "device"),
                 ("cache", "workers"), ("cache", "dir"), ("data", "root"), ("data", "test_root"),
                 ("data", "skip_bad"), ("train", "compile")}


@dataclass
class FoldState:
    phase: int = 0          # index of the phase in progress (or the next one to start)
    epochs_done: int = 0    # epochs finished inside `phase`
    lr: float | None = None
    lr_source: str = ""
    rows: list[dict] = field(default_factory=list)


def ckpt_path(fold_dir: Path) -> Path:
    return Path(fold_dir) / CKPT_DIR / CKPT_FILE


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(fold_dir: Path, learn: Learner, state: FoldState, with_opt: bool = True) -> Path:
    payload = {
        "model": get_model(learn.model).state_dict(),
        "opt": learn.opt.state_dict() if (with_opt and learn.opt is not None) else None,
        "state": asdict(state),
        "rng": _rng_state(),
    }
    return atomic_save_torch(ckpt_path(fold_dir), payload)


def load_checkpoint(fold_dir: Path) -> dict | None:
    path = ckpt_path(fold_dir)
    if not path.is_file():
        return None
    try:
        # Our own file: it holds the optimizer's and numpy's state, which need full unpickling.
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError) as exc:
        raise FashiontagError(f"{path}: unreadable checkpoint ({exc}); delete it or pass --force") from None


def restore(learn: Learner, ckpt: dict) -> FoldState:
    """Load the model weights and RNG state of `ckpt`; the optimizer is restored per phase (`restore_opt`)."""
    get_model(learn.model).load_state_dict(ckpt["model"])
    if ckpt.get("rng"):
        _set_rng_state(ckpt["rng"])
    return FoldState(**ckpt["state"])


def restore_opt(learn: Learner, ckpt: dict) -> bool:
    """Optimizer state (Adam moments) of a phase interrupted mid-way; call after freeze/unfreeze."""
    if ckpt.get("opt") is None:
        return False
    if learn.opt is None:
        learn.create_opt()
    learn.opt.load_state_dict(ckpt["opt"])
    return True


class Checkpointer(Callback):
    """Save model + optimizer + schedule position after every finished epoch (after the EpochLogger)."""

    order = 62
    run_valid = False

    def __init__(self, fold_dir: Path, state: FoldState, start_epoch: int = 0):
        self.fold_dir, self.state, self.start_epoch = Path(fold_dir), state, start_epoch

    def after_epoch(self):
        if self.epoch < self.start_epoch:
            return
        self.state.epochs_done = self.epoch + 1
        save_checkpoint(self.fold_dir, self.learn, self.state)


def _strip(cfg: dict) -> dict:
    out = copy.deepcopy({k: v for k, v in cfg.items() if k in TRAINING_SECTIONS})
    for path in RUN_ONLY_KEYS:
        node = out
        for part in path[:-1]:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return out


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (run-only settings ignored)."""
    old, new = (_strip(old), _strip(new)) if not prefix else (old, new)
    diffs = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, path + ".")
        elif a != b:
            diffs.append(f"{path}: {a!r} -> {b!r}")
    return diffs


def check_same_config(fold_dir: Path, cfg: dict) -> None:
    """Refuse to resume (or to skip as done) a fold trained with a different recipe."""
    path = Path(fold_dir) / "config.yaml"
    if not path.is_file():
        return
    diffs = config_differences(with_base_defaults(load_yaml(path)), cfg)
    if diffs:
        shown = "; ".join(diffs[:5]) + (f"; ... ({len(diffs)} in all)" if len(diffs) > 5 else "")
        raise FashiontagError(
            f"{fold_dir} was trained with a different config ({shown}); use another --exp, "
            "or --force to retrain it"
        )
