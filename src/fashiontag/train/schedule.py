"""The seed recipe's schedule as data: progressive-resizing stages, each a frozen phase (head only) and an
unfrozen phase (three layer groups at [lr/100, lr, lr]), each phase SGDR or one-cycle; the LR finder.

Everything here calls fastai's own fitting functions (`fit_one_cycle`, `fit_sgdr`, `lr_find`), which take
`start_epoch`, so a resumed phase continues its schedule exactly where the checkpoint left it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
from fastai.callback.core import Callback, CancelValidException
from fastai.callback.schedule import SuggestionMethod
from fastai.learner import Learner

from fashiontag.core.errors import ConfigError
from fashiontag.train.resume import rng_state, set_rng_state

log = logging.getLogger(__name__)

SCHEDULES = ("sgdr", "one_cycle")


@dataclass(frozen=True)
class Phase:
    """One fit call: a stage (image size) in frozen or unfrozen mode."""

    index: int
    stage: int
    size: int
    frozen: bool
    epochs: int
    schedule: str
    lr_mult: float

    @property
    def name(self) -> str:
        return f"stage{self.stage}_{self.size}px_{'frozen' if self.frozen else 'unfrozen'}"

    def as_dict(self) -> dict:
        return {**asdict(self), "name": self.name}


def sgdr_n_cycles(epochs: int, cycle_len: int, cycle_mult: int) -> int:
    """Number of SGDR cycles whose lengths cycle_len * mult**i add up to exactly `epochs`."""
    if cycle_len < 1 or cycle_mult < 2:
        raise ConfigError(f"SGDR needs train.sgdr_cycle_len >= 1 and train.sgdr_cycle_mult >= 2 "
                          f"(got {cycle_len}, {cycle_mult})")
    total, n = 0, 0
    while total < epochs:
        total += cycle_len * cycle_mult**n
        n += 1
    if total != epochs:
        sums = [cycle_len * (cycle_mult**k - 1) // (cycle_mult - 1) for k in range(1, 6)]
        raise ConfigError(f"SGDR cycles of {cycle_len} x{cycle_mult} cannot add up to {epochs} epochs; "
                          f"use one of {sums} (e.g. 7 = 1 + 2 + 4)")
    return n


def plan_phases(train: dict) -> list[Phase]:
    """Stages x (frozen, unfrozen) phases with their epochs and schedules; validates the schedule keys."""
    stages = [int(s) for s in train["stages"]]
    if not stages or any(s < 16 for s in stages):
        raise ConfigError(f"train.stages must be image sizes >= 16, got {train['stages']}")
    phases: list[Phase] = []
    for stage, size in enumerate(stages):
        mult = 1.0 if stage == 0 else float(train["stage_lr_mult"])
        for frozen, epochs, sched in (
            (True, int(train["frozen_epochs"]), train["frozen_schedule"]),
            (False, int(train["unfrozen_epochs"]), train["schedule"]),
        ):
            if epochs <= 0:
                continue
            if sched not in SCHEDULES:
                raise ConfigError(f"schedule must be one of {SCHEDULES}, got {sched!r}")
            if sched == "sgdr":
                sgdr_n_cycles(epochs, int(train["sgdr_cycle_len"]), int(train["sgdr_cycle_mult"]))
            phases.append(Phase(len(phases), stage, size, frozen, epochs, sched, mult))
    if not phases:
        raise ConfigError("nothing to train: train.frozen_epochs and train.unfrozen_epochs are both 0")
    return phases


def phase_lr(phase: Phase, lr: float, ratios: list[float]) -> float | np.ndarray:
    """Frozen: one rate (only the head trains). Unfrozen: one rate per layer group, lr * ratios."""
    base = float(lr) * phase.lr_mult
    if phase.frozen:
        return base
    if len(ratios) != 3:
        raise ConfigError(f"train.lr_ratios needs three values (early body, late body, head), got {ratios}")
    return np.array([base * float(r) for r in ratios])


def prepare_phase(learn: Learner, phase: Phase) -> None:
    """Freeze or unfreeze for the phase (fastai clears the optimizer state: each phase starts fresh)."""
    if phase.frozen:
        learn.freeze()
    else:
        learn.unfreeze()


def run_phase(learn: Learner, phase: Phase, lr: float, train: dict, start_epoch: int = 0, cbs=None) -> None:
    """Fit one phase with fastai's schedule functions, from `start_epoch` when resuming."""
    lrs = phase_lr(phase, lr, list(train["lr_ratios"]))
    cbs = [*(cbs or []), Validation(last_only=train["validate_epochs"] == "last")]
    if phase.schedule == "sgdr":
        cycle_len, mult = int(train["sgdr_cycle_len"]), int(train["sgdr_cycle_mult"])
        n_cycles = sgdr_n_cycles(phase.epochs, cycle_len, mult)
        learn.fit_sgdr(n_cycles, cycle_len, lr_max=lrs, cycle_mult=mult, start_epoch=start_epoch, cbs=cbs)
    else:
        learn.fit_one_cycle(phase.epochs, lr_max=lrs, pct_start=float(train["pct_start"]),
                            start_epoch=start_epoch, cbs=cbs)


class Validation(Callback):
    """Validation that leaves training's random streams alone, scored every epoch or after the last only.

    Creating the validation loader's iterator draws from torch's global generator (its base seed), so without
    this each validation would shift the next epoch's dropout masks and views. The Python, NumPy, torch and
    CUDA streams are saved before and restored after validating: the trained model does not depend on
    `train.validate_epochs`, which only drops the per-epoch valid loss and accuracy (NaN in log.csv) and their
    cost (a forward pass over a quarter as many photos as an epoch trains on: ~8% of it, estimated, not timed).
    fastai's Recorder drops a cancelled epoch's metrics itself.
    """

    order = 0  # before the Recorder (50): a cancelled validation never resets or reads its metrics

    def __init__(self, last_only: bool = False):
        self.last_only, self._saved = last_only, None

    def before_validate(self):
        if self.last_only and self.epoch < self.n_epoch - 1:
            raise CancelValidException()
        self._saved = rng_state()

    def after_validate(self):
        if self._saved is not None:
            set_rng_state(self._saved)
            self._saved = None


def find_lr(learn: Learner, train: dict) -> float:
    """fastai's exponential LR sweep; returns the configured suggestion (valley: before the blow-up).

    The learner's weights are restored by fastai afterwards; the sweep stays in learn.recorder for the plot.
    """
    name = str(train["lr_find_suggest"]).capitalize()
    func = getattr(SuggestionMethod, name, None)
    if func is None:
        raise ConfigError(f"train.lr_find_suggest must be valley, slide, minimum or steep, got {name.lower()!r}")
    fallback = float(train["lr_fallback"])
    try:
        start, end = (float(v) for v in train["lr_find_range"])
        suggested = float(learn.lr_find(start_lr=start, end_lr=end, num_it=int(train["lr_find_iters"]),
                                        show_plot=False, suggest_funcs=(func,))[0])
    except (IndexError, ValueError, RuntimeError) as exc:  # too few points for the suggestion function
        log.warning("LR finder gave no suggestion (%s); using train.lr_fallback=%g", exc, fallback)
        return fallback
    if not math.isfinite(suggested) or suggested <= 0:
        log.warning("LR finder suggested %r; using train.lr_fallback=%g", suggested, fallback)
        return fallback
    log.info("LR finder (%s) suggests lr=%.3g", name.lower(), suggested)
    return suggested
