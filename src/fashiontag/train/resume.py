"""Resumable folds: model, optimizer, schedule position and every random stream, saved atomically to
fold_<k>/ckpt/last.pth (train/checkpoints.py decides when); starting the same command again continues from
there and ends with the same weights, bit for bit on the CPU, as a run that was never interrupted.

What a resumed fold restores, and why each is needed for that exactness:
- the schedule position (phase index, epochs done in it, the chosen lr, the log rows so far): fastai's
  fit_one_cycle/fit_sgdr take `start_epoch` and recompute the learning-rate curve from the epoch number;
- the model's weights and buffers (BatchNorm running statistics and batch counts);
- the optimizer: its moments and step counts when a phase is resumed mid-way, and always its
  hyper-parameters (fit_sgdr schedules only the lr, so the momentum is the one the previous one-cycle phase
  ended with, not the optimizer's default), moved onto each parameter's device;
- python's, numpy's and torch's (CPU and CUDA) random streams, and each fastai DataLoader's own `rng`
  (it draws the shuffling order; a rebuilt loader would start its sequence over), restored just before
  the first resumed epoch, after the loaders of every stage size have been built.
Frozen groups, BatchNorm freezing, train/eval mode and label smoothing need nothing: the phase's
prepare_phase, fastai's callbacks and the (checked, unchanged) config set them again.
A config that changed since the checkpoint is refused (it would silently mix two recipes) unless --force
restarts the fold.
"""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.torch_core import get_model

from fashiontag.core.config import load_yaml, with_base_defaults
from fashiontag.core.errors import FashiontagError

log = logging.getLogger(__name__)

CKPT_DIR = "ckpt"
CKPT_FILE = "last.pth"
# Only these sections decide what a fold learns; within them, settings that may change between a run and
# its resumption (paths spelled differently, worker counts, display, checkpoint cadence) are ignored.
TRAINING_SECTIONS = ("seed", "data", "cache", "model", "train", "augment")
RUN_ONLY_KEYS = {("train", "force"), ("train", "progress"), ("train", "num_workers"), ("train", "device"),
                 ("cache", "workers"), ("cache", "dir"), ("data", "root"), ("data", "test_root"),
                 ("data", "skip_bad"), ("train", "compile"), ("train", "checkpoint_every_s"),
                 ("train", "prefix_batch_size"), ("train", "compile_prefix"),
                 ("train", "validate_epochs")}


@dataclass
class FoldState:
    phase: int = 0          # index of the phase in progress (or the next one to start)
    epochs_done: int = 0    # epochs finished inside `phase`
    lr: float | None = None
    lr_source: str = ""
    rows: list[dict] = field(default_factory=list)


def ckpt_path(fold_dir: Path) -> Path:
    return Path(fold_dir) / CKPT_DIR / CKPT_FILE


def rng_state() -> dict:
    """Every global random stream; CUDA's only once CUDA is in use (querying it would initialise it)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def loader_rngs(loaders: dict) -> dict[int, list]:
    """{stage size: [state of each fastai DataLoader's `rng`]} of the DataLoaders built so far (None for a
    loader without one: it draws nothing of its own)."""
    return {size: [dl.rng.getstate() if hasattr(dl, "rng") else None for dl in dls.loaders]
            for size, dls in loaders.items()}


def smooth_loss_state(learn: Learner) -> dict | None:
    """The Recorder's smoothed training loss (what log.csv's train_loss shows): it runs across the epochs
    of a fit, so a phase resumed mid-way continues it rather than starting it over."""
    smooth = getattr(getattr(learn, "recorder", None), "smooth_loss", None)
    if smooth is None:
        return None
    val = smooth.val
    return {"count": int(smooth.count), "val": val.detach().cpu().clone() if torch.is_tensor(val) else val}


class ContinueSmoothLoss(Callback):
    """Once, right after the Recorder (order 50) resets it at the start of the resumed fit."""

    order = 51

    def __init__(self, state: dict):
        self.state = state

    def before_fit(self):
        smooth = self.learn.recorder.smooth_loss
        smooth.count, smooth.val = self.state["count"], self.state["val"]
        self.learn.remove_cb(self)


def load_checkpoint(fold_dir: Path) -> dict | None:
    path = ckpt_path(fold_dir)
    if not path.is_file():
        return None
    try:
        # Our own file: it holds the optimizer's and numpy's state, which need full unpickling.
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise FashiontagError(f"{path}: unreadable checkpoint ({exc}); delete it or pass --force") from None


def grad_mask(model: torch.nn.Module) -> list[bool]:
    """Which parameters hold a gradient tensor (zeros between steps: fastai zeroes them in place)."""
    return [p.grad is not None for p in model.parameters()]


def restore(learn: Learner, ckpt: dict) -> FoldState:
    """Load the model weights of `ckpt`; the optimizer and the random streams follow in `resume_fit`.

    fastai's optimizer steps every parameter that has a gradient tensor, frozen or not (weight decay still
    shrinks a body frozen again after an unfrozen phase), so the zero gradients come back too.
    """
    model = get_model(learn.model)
    model.load_state_dict(ckpt["model"])
    for p, had in zip(model.parameters(), ckpt.get("grads") or [], strict=False):
        if had and p.grad is None:
            p.grad = torch.zeros_like(p)
    return FoldState(**ckpt["state"])


def state_to_param_devices(opt) -> None:
    """Put every optimizer state tensor on its parameter's device (checkpoints load to the CPU, the model may
    live on a GPU: the first step would otherwise mix devices). Any device, any optimizer fastai wraps."""
    inner = getattr(opt, "opt", None)
    if isinstance(inner, torch.optim.Optimizer):
        # torch's own policy, through its public API: the moments go to the parameter's device and dtype,
        # `step` stays on the CPU unless the optimizer is fused or capturable.
        inner.load_state_dict(inner.state_dict())
        return
    for p, state in opt.state.items():  # fastai's Optimizer: every state tensor is elementwise with p
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and v.device != p.device:
                state[k] = v.to(p.device)


class OptStateFollowsParams(Callback):
    """Before every fit, once TrainEvalCallback (order -10) has moved the model onto the loaders' device:
    the optimizer state restored from a checkpoint (loaded to the CPU) joins its parameters."""

    order = -9

    def before_fit(self):
        if self.learn.opt is not None:
            state_to_param_devices(self.learn.opt)


def restore_opt(learn: Learner, ckpt: dict) -> bool:
    """Load the checkpoint's optimizer (hyper-parameters, and moments when it has them) onto the learner's."""
    if ckpt.get("opt") is None:
        return False
    if learn.opt is None:
        learn.create_opt()
    learn.opt.load_state_dict(ckpt["opt"])
    state_to_param_devices(learn.opt)  # where the model is now; OptStateFollowsParams when fit moves it
    if not any(isinstance(cb, OptStateFollowsParams) for cb in learn.cbs):
        learn.add_cb(OptStateFollowsParams())
    return True


def resume_fit(learn: Learner, ckpt: dict, start_epoch: int, enter_phase: Callable[[], None],
               loaders_for: Callable[[int], object], rank_offset: int = 0) -> None:
    """Everything but the weights, in the order that reproduces the uninterrupted run, right before the
    first resumed epoch. `enter_phase` sets the phase's loaders (building them on a stage change, which draws
    from python's stream) and freezes or unfreezes (which clears the optimizer's moments).

    A phase resumed mid-way takes the checkpoint's moments after `enter_phase`; a phase starting afresh (the
    checkpoint closed the previous one) takes its hyper-parameters before, as the uninterrupted run kept them,
    and builds its loaders after the random streams are back where that run built them.
    """
    if not start_epoch:
        restore_opt(learn, ckpt)
    saved = ckpt.get("loaders") or {}
    for size in saved:  # build them first: building draws from python's stream, restored below
        loaders_for(int(size))
    for size, states in saved.items():
        for dl, st in zip(loaders_for(int(size)).loaders, states, strict=True):
            if st is not None:
                dl.rng.setstate(st)
    if ckpt.get("rng"):
        set_rng_state(ckpt["rng"])
    if rank_offset:
        # Under DDP rank 0's streams were saved; the other ranks draw their own augmentations from there.
        seed = int(torch.randint(2**31 - 1, ()).item()) + rank_offset
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
    enter_phase()
    if start_epoch:
        restore_opt(learn, ckpt)
        if ckpt.get("smooth_loss"):
            learn.add_cb(ContinueSmoothLoss(ckpt["smooth_loss"]))


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
