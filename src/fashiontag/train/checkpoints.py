"""When and how a fold's resume checkpoint (train/resume.py) is written, without stalling training.

Cadence (train.checkpoint_every_s): always at the end of a phase, and after an epoch once that many seconds
have passed since the last write; 0 writes after every epoch. A phase-end checkpoint holds the optimizer's
hyper-parameters but not its moments, which the next phase clears anyway (freeze/unfreeze), so it is about a
third of a mid-phase one (Adam keeps two moments per weight).

Writing: the training thread only copies the state to host memory (`snapshot`); a background thread pickles
it to a temporary file and renames it over ckpt/last.pth (core.files.atomic_save_torch), so a kill -9
mid-write leaves the previous checkpoint in place, never a half-written one. One write at a time: the next
checkpoint first waits for the previous write, and the fold waits for the last one before it finishes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.torch_core import get_model
from fastcore.foundation import L

from fashiontag.core.errors import FashiontagError
from fashiontag.core.files import atomic_save_torch
from fashiontag.train.resume import FoldState, ckpt_path, grad_mask, loader_rngs, rng_state, smooth_loss_state

log = logging.getLogger(__name__)


def host_copy(obj):
    """A deep copy whose tensors are detached copies in host memory (training keeps updating the originals)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: host_copy(v) for k, v in obj.items()}
    if isinstance(obj, L):
        return L(host_copy(v) for v in obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(host_copy(v) for v in obj)
    return obj


def opt_snapshot(opt, moments: bool = True) -> dict | None:
    """The optimizer's state_dict in host memory; without the moments, only what its `clear_state` keeps
    (torch's optimizers behind fastai's OptimWrapper: nothing; fastai's own: its `_keep_on_clear` flags)."""
    if opt is None:
        return None
    sd = opt.state_dict()
    if moments:
        return host_copy(sd)
    if "param_groups" in sd:
        return host_copy({**sd, "state": {}})
    keep = getattr(opt, "_keep_on_clear", ())
    return host_copy({"state": [{k: s[k] for k in keep if k in s} for s in sd["state"]],
                      "hypers": L(dict(h) for h in sd["hypers"])})


def snapshot(learn: Learner, state: FoldState, loaders: dict, moments: bool = True) -> dict:
    return {
        "model": host_copy(get_model(learn.model).state_dict()),
        "grads": grad_mask(get_model(learn.model)),
        "opt": opt_snapshot(learn.opt, moments),
        "state": asdict(state),  # a deep copy: the rows keep growing
        "rng": rng_state(),
        "loaders": loader_rngs(loaders),
        "smooth_loss": smooth_loss_state(learn),
    }


class CheckpointWriter:
    """Background, one-at-a-time, atomic checkpoint writes for one fold; a context manager that waits for
    the last write on exit (and reports its failure when nothing else went wrong)."""

    def __init__(self, fold_dir: Path, every_s: float, loaders: dict,
                 clock: Callable[[], float] = time.monotonic):
        self.path, self.every_s, self.loaders, self.clock = ckpt_path(fold_dir), float(every_s), loaders, clock
        self._last = clock()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def due(self) -> bool:
        return self.clock() - self._last >= self.every_s

    def save(self, learn: Learner, state: FoldState, moments: bool = True) -> None:
        self.wait()  # before the copy: at most one checkpoint in host memory besides the model
        payload = snapshot(learn, state, self.loaders, moments)
        self._last = self.clock()
        self._thread = threading.Thread(target=self._write, args=(payload,), name="checkpoint-writer")
        self._thread.start()

    def _write(self, payload: dict) -> None:
        t0 = time.monotonic()
        try:
            atomic_save_torch(self.path, payload)
        except BaseException as exc:  # reported by wait(), in the training thread
            self._error = exc
            return
        log.debug("checkpoint %s written in %.1fs", self.path, time.monotonic() - t0)

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            exc, self._error = self._error, None
            raise FashiontagError(f"{self.path}: checkpoint not written ({exc})") from exc

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.wait()
            return
        try:  # an interrupted run still leaves its last checkpoint complete
            self.wait()
        except FashiontagError as err:
            log.warning("%s", err)


class Checkpointer(Callback):
    """After a finished epoch of a phase (after the EpochLogger): a checkpoint at the phase's end, or when
    the writer's interval has passed."""

    order = 62
    run_valid = False

    def __init__(self, writer: CheckpointWriter, state: FoldState, start_epoch: int = 0):
        self.writer, self.state, self.start_epoch = writer, state, start_epoch

    def after_epoch(self):
        if self.epoch < self.start_epoch:  # skipped on resume (fastai cancels them)
            return
        self.state.epochs_done = self.epoch + 1
        phase_end = self.epoch + 1 == self.n_epoch
        if phase_end or self.writer.due():
            self.writer.save(self.learn, self.state, moments=not phase_end)
