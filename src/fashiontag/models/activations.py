"""A partially fine-tuned fold model on a list of image paths: the frozen prefix once, every fold's tail on it.

A run trained with `train.trainable_stages` has the same frozen prefix in every fold (ImageNet weights, never
trained), so prediction, TTA and the stacker's features need its activations once per view and image: the
first fold computes them into the activation cache, the other folds read them (the key includes the prefix's
weight digest, so a fold whose prefix differed would compute its own). Photos of the training set are rows of
the training image cache and read the training activations' rows; new photos get an image cache of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fashiontag.core.skips import SkipReport
from fashiontag.data.activation_cache import SUBDIR, ActivationStore
from fashiontag.data.cache import build_cache
from fashiontag.models.partial import activation_spec, prefix_activations, prefix_pass, split_body
from fashiontag.models.tta import FLIP, ORIG, View

log = logging.getLogger(__name__)


def partial_run(cfg: dict) -> bool:
    """True when a run's config fine-tuned only the last body stages (its folds can share prefix activations)."""
    return cfg["train"]["trainable_stages"] is not None


def view_name(view: View) -> str:
    """A TTA view (models.tta: orig, flip or augmented view i) as an activation view name."""
    return view if view in (ORIG, FLIP) else f"aug{int(view)}"


def path_activations(model: nn.Sequential, pre: dict, paths: Sequence[str], cfg: dict, device: torch.device,
                     skips: SkipReport, crops=None, views: Sequence[str] = ("orig",)
                     ) -> tuple[nn.Sequential, dict[str, np.ndarray], list[int]]:
    """(tail + head of `model`, {view: activations of every path}, indices of the readable paths).

    Unreadable images go to `skips` (or raise, per skips.skip); their rows hold zeros and are not in kept.
    """
    split = split_body(model[0], int(cfg["train"]["trainable_stages"]))
    cache_dir = Path(cfg["cache"]["dir"])
    cache = build_cache(list(paths), int(pre.get("cache_size") or pre["size"]), cache_dir, crops, name="predict",
                        resize=pre["resize"], pad_value=pre["pad_value"],
                        workers=max(1, int(cfg["train"]["num_workers"])), skips=skips)
    spec = activation_spec(pre["backbone"], split, int(pre["size"]), pre["mean"], pre["std"], pre["augment"],
                           int(cfg["seed"]))
    run = prefix_pass(cfg["train"])
    acts = prefix_activations(split, cache, list(views), spec, ActivationStore(cache_dir / SUBDIR), run["batch_size"],
                              device, compile=run["compile"])
    return nn.Sequential(split.tail, model[1]).eval(), acts, [int(i) for i in np.flatnonzero(cache.ok)]


def run_on_rows(fn: Callable[[torch.Tensor], torch.Tensor], acts, rows: Sequence[int], device: torch.device,
                batch_size: int = 256) -> np.ndarray:
    """fn over the activations' `rows` in batches (float32, channels_last); (len(rows), ...) float32 outputs."""
    rows = np.asarray(rows, dtype=np.int64)
    outs = []
    with torch.inference_mode():
        for i in range(0, len(rows), batch_size):
            x = torch.from_numpy(np.asarray(acts[rows[i:i + batch_size]], dtype=np.float32)).to(device)
            outs.append(fn(x.contiguous(memory_format=torch.channels_last)).float().cpu().numpy())
    if not outs:
        return np.zeros((0,), dtype=np.float32)
    return np.concatenate(outs)


def tail_features(model: nn.Sequential, pre: dict, paths: Sequence[str], cfg: dict, device: torch.device,
                  skips: SkipReport, pools: Sequence[str]) -> tuple[np.ndarray, list[int]]:
    """(rows of readable paths, D) pooled final feature maps (the stacker's features) of a partially fine-tuned
    fold model, its tail run on the plain view's cached activations; and the kept indices."""
    from fashiontag.models.features import pool_features

    tail, acts, kept = path_activations(model, pre, paths, cfg, device, skips, None, ["orig"])
    body_tail = tail[0].to(device).to(memory_format=torch.channels_last)
    feats = run_on_rows(lambda x: pool_features(body_tail(x), pools), acts["orig"], kept, device)
    return feats.astype(np.float32), kept
