"""Training progress readable in a terminal and in a log file.

fastprogress bars are only useful on a terminal; redirected to a file they become walls of control
characters. `use_bars` decides (train.progress: auto = bars only when stderr is a TTY); either way
`EpochLogger` logs one line per epoch (stage, phase, epoch, losses, accuracy, lr, time) through `logging`,
which the runner also sends to the fold's train.log, and keeps the rows that become log.csv.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import pandas as pd
from fastai.callback.core import Callback
from fastai.callback.progress import ProgressCallback
from fastai.learner import Learner

from fashiontag.core.files import atomic_write_csv
from fashiontag.train.schedule import Phase

log = logging.getLogger("fashiontag.train")

LOG_COLUMNS = ["stage", "size", "phase", "epoch", "phase_epoch", "train_loss", "valid_loss", "accuracy",
               "train_accuracy", "lr", "time"]


def use_bars(mode: str = "auto") -> bool:
    if mode == "bar":
        return True
    if mode == "log":
        return False
    return sys.stderr.isatty()


def set_progress(learn: Learner, bars: bool) -> None:
    """Bars on a terminal; otherwise no fastprogress and no printed epoch table (EpochLogger logs)."""
    if not bars:
        if hasattr(learn, "progress"):
            learn.remove_cb(ProgressCallback)
        learn.logger = lambda *_: None
    elif not hasattr(learn, "progress"):
        learn.add_cb(ProgressCallback())


class EpochLogger(Callback):
    """One log line and one log.csv row per finished epoch of a phase (epochs skipped on resume excluded)."""

    order = 61  # after the Recorder (50), which computes the epoch's losses and metrics
    run_valid = False

    def __init__(self, phase: Phase, rows: list[dict], log_csv: Path, start_epoch: int = 0, first_epoch: int = 0):
        self.phase, self.rows, self.log_csv = phase, rows, Path(log_csv)
        self.start_epoch, self.first_epoch = start_epoch, first_epoch

    def before_epoch(self):
        self._t0 = time.time()
        self._hits, self._seen = None, 0

    def after_batch(self):
        # Running accuracy on the (augmented, dropout-on) training batches, for the train-vs-valid curves.
        # Counted on the device and read once per epoch: an int() here would wait for every batch's step.
        if self.training and self.pred is not None:
            targ = self.yb[0]
            targ = targ.argmax(dim=-1) if targ.ndim > 1 else targ
            hits = (self.pred.argmax(dim=-1) == targ).sum()
            self._hits = hits if self._hits is None else self._hits + hits
            self._seen += len(targ)

    def after_epoch(self):
        if self.epoch < self.start_epoch:  # fastai's SkipToEpoch cancelled it: already logged before
            return
        rec = self.learn.recorder
        names = [n for n in rec.metric_names[1:] if n != "time"]
        values = dict(zip(names, rec.values[-1], strict=False)) if rec.values else {}
        lr = float(self.learn.opt.hypers[-1]["lr"])
        row = {
            "stage": self.phase.stage, "size": self.phase.size, "phase": self.phase.name,
            "epoch": self.first_epoch + self.epoch + 1, "phase_epoch": self.epoch + 1,
            "train_loss": _num(values.get("train_loss")), "valid_loss": _num(values.get("valid_loss")),
            "accuracy": _num(values.get("accuracy")),
            "train_accuracy": int(self._hits) / self._seen if self._seen else float("nan"), "lr": lr,
            "time": round(time.time() - self._t0, 2),
        }
        self.rows.append(row)
        atomic_write_csv(self.log_csv, pd.DataFrame(self.rows, columns=LOG_COLUMNS))
        log.info("%s epoch %d/%d (total %d): train_loss %.4f valid_loss %.4f accuracy %.4f lr %.2e %.1fs",
                 self.phase.name, row["phase_epoch"], self.phase.epochs, row["epoch"], row["train_loss"],
                 row["valid_loss"], row["accuracy"], lr, row["time"])


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
