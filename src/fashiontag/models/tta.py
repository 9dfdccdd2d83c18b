"""Test-time augmentation: which views to predict, how to predict them, how to combine them.

The seed recipe: the training transforms make 8 augmented views, 4 are chosen at random and averaged
with the original (config `tta`: n_views, n_random, mode mean|max, flips_only). View i of the
n_views is defined by its own seed (derived from the run seed and i), so "view 3" is the same images
on every run and every fold; only the chosen views are computed (the others would be thrown away).
Augmented views are the fold's training transforms (fastai batch transforms applied in train mode by
`data.loaders.test_dataloader(..., augment=True)`), so TTA sees exactly what training saw.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fashiontag.core.errors import ConfigError
from fashiontag.core.progress import track

ORIG, FLIP = "orig", "flip"
MODES = ("mean", "max")
View = str | int  # ORIG, FLIP, or the index of an augmented view


def view_plan(tta: dict, seed: int) -> list[View]:
    """The views to predict: [orig] without TTA, [orig, flip] with flips_only, else orig + n_random of
    n_views augmented views chosen at random (seeded)."""
    if not tta["enabled"]:
        return [ORIG]
    if tta["flips_only"]:
        return [ORIG, FLIP]
    n_views, n_random = int(tta["n_views"]), int(tta["n_random"])
    if n_views < 0 or n_random < 0:
        raise ConfigError(f"tta.n_views and tta.n_random must be >= 0, got {n_views}, {n_random}")
    rng = np.random.default_rng([seed, 7919])
    chosen = rng.choice(n_views, size=min(n_random, n_views), replace=False) if n_views else []
    return [ORIG, *sorted(int(i) for i in chosen)]


def view_seed(seed: int, view: int) -> int:
    """The seed of augmented view `view`: independent of the plan, so a view is the same in every run."""
    return int(np.random.SeedSequence([seed, view]).generate_state(1)[0])


def combine_views(views: np.ndarray, mode: str = "mean") -> np.ndarray:
    """(views, rows, values) probabilities -> (rows, values): the mean, or the per-value max renormalised."""
    if mode not in MODES:
        raise ConfigError(f"tta.mode must be one of {MODES}, got {mode!r}")
    out = views.mean(axis=0) if mode == "mean" else views.max(axis=0)
    return out / out.sum(axis=1, keepdims=True)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed python `random` (fastai's apply-or-not draws) and torch (its magnitudes) for one pass, then
    restore both so TTA leaves the caller's random streams untouched."""
    state = random.getstate()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(state)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    # bf16 on GPU for speed (models are trained that way); CPU stays fp32.
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _batch(b) -> torch.Tensor:
    x = b[0] if isinstance(b, tuple | list) else b
    return x.as_subclass(torch.Tensor)  # drop fastai's TensorImage dispatch overhead


FLUSH_EVERY = 32  # batches kept on the device before one copy to the host


def run_batches(fn: Callable[[torch.Tensor], list[torch.Tensor]], dl, device: torch.device,
                what: str = "inference") -> list[np.ndarray]:
    """Apply `fn` (a batch -> list of outputs) over a loader; concatenate each output over batches.
    `what` names the pass in its progress (core.progress: a bar on a terminal, a line every 30 s in a log).

    Outputs stay on the device and are copied to the host every FLUSH_EVERY batches: a `.cpu()` per batch
    would synchronise the GPU each time and leave it idle while the next batch is loaded and augmented.
    """
    outs: list[list[np.ndarray]] = []
    pending: list[list[torch.Tensor]] = []

    def flush() -> None:
        for acc, part in zip(outs, pending, strict=True):
            if part:
                acc.append(torch.cat(part).float().cpu().numpy())
                part.clear()

    with torch.inference_mode(), _autocast(device):
        for i, b in enumerate(track(dl, what, unit="batch")):
            x = _batch(b).to(device)
            if x.ndim == 4:  # channels_last convolutions: ~2x faster on CPU too (measured, lite0 224 px)
                x = x.contiguous(memory_format=torch.channels_last)
            res = fn(x)
            if not outs:
                outs, pending = [[] for _ in res], [[] for _ in res]
            for part, r in zip(pending, res, strict=True):
                part.append(r.detach())
            if (i + 1) % FLUSH_EVERY == 0:
                flush()
        flush()
    return [np.concatenate(acc).astype(np.float64) for acc in outs] if outs else []


def predict_views(model: nn.Module, make_dl: Callable[[bool], object], plan: list[View], seed: int,
                  device: torch.device, what: str = "TTA") -> np.ndarray:
    """(views, rows, values) softmax probabilities of `model` for every view of `plan`.

    make_dl(augment) returns a loader of the images in a fixed order; orig and flip share one plain
    pass (the flip is done on the normalised batch: flipping commutes with per-channel normalising).
    """
    static = [v for v in plan if v in (ORIG, FLIP)]
    results: dict[View, np.ndarray] = {}
    if static:
        def fn(x: torch.Tensor) -> list[torch.Tensor]:
            return [F.softmax(model(x.flip(-1) if v == FLIP else x).float(), dim=-1) for v in static]

        results.update(zip(static, run_batches(fn, make_dl(False), device, f"{what} {'+'.join(map(str, static))}"),
                           strict=True))
    for v in plan:
        if v in (ORIG, FLIP):
            continue
        with seeded(view_seed(seed, int(v)), device):
            (probs,) = run_batches(lambda x: [F.softmax(model(x).float(), dim=-1)], make_dl(True), device,
                                   f"{what} view {v}")
        results[v] = probs
    return np.stack([results[v] for v in plan])
