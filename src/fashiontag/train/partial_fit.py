"""Partial fine-tuning (`train.trainable_stages: n`): fastai trains the body's last n stages + its final conv
+ the seed head on cached activations of the frozen stages before them.

On a CPU, running the frozen early stages is most of a forward pass; they are run once per view of every
image (models/partial.py, cached by data/activation_cache.py, shared by all folds and reruns) and each fold
trains only the tail on them: the LR finder, then the configured phases (a frozen phase trains the head alone;
the unfrozen phase trains [stages, final conv, head] at lr * train.lr_ratios), one-cycle, label smoothing.
Each epoch shows every image as one of its `train.feature_views` views at random (orig, flip, TTA's seeded
augmented views). The fold saves the whole model (frozen prefix + trained tail + head) as model.pth, so
predict, tag and embed load it unchanged.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import torch
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.torch_core import params
from torch import nn

from fashiontag.core.errors import ConfigError
from fashiontag.data.activation_cache import SUBDIR, ActivationStore
from fashiontag.data.cache import ImageCache
from fashiontag.data.row_loader import row_dataloaders
from fashiontag.models.partial import (
    activation_spec,
    prefix_activations,
    prefix_pass,
    trainable_model,
    view_names,
)
from fashiontag.train.learner import make_learner

log = logging.getLogger(__name__)


def partial_on(train: dict) -> bool:
    """True when the run fine-tunes the body's last stages on cached activations."""
    return train["trainable_stages"] is not None


def check_partial_config(train: dict) -> None:
    """The cache is exact only while the prefix never trains and the input size never changes."""
    problems = []
    if int(train["trainable_stages"]) == 0 and int(train["unfrozen_epochs"]) > 0:
        problems.append("train.trainable_stages=0 trains the head alone: train.unfrozen_epochs must be 0 "
                        "(train.frozen_epochs sets the epochs)")
    if train["feature_cache"]:
        problems.append("train.feature_cache: true (that trains the head alone; set it false)")
    if len(train["stages"]) != 1:
        problems.append(f"train.stages={train['stages']} (needs exactly one size)")
    if problems:
        raise ConfigError("train.trainable_stages trains the last body stages on cached activations, so: "
                          + "; ".join(problems))


def training_views(cfg: dict) -> list[str]:
    return view_names(int(cfg["train"]["feature_views"]), bool(cfg["augment"]["flip"]))


def activation_store(cfg: dict) -> ActivationStore:
    return ActivationStore(Path(cfg["cache"]["dir"]) / SUBDIR)


def tail_splitter(model: nn.Sequential, n_stages: int) -> list[list[nn.Parameter]]:
    """fastai splitter for `nn.Sequential(tail, head)`: [trained stages, final conv/BN, head].

    A body without a final conv (ResNet) splits its stages instead: [all but the last, the last, head].
    """
    tail = list(model[0])
    if n_stages == 0:  # the head alone trains (frozen phases only: check_partial_config)
        body = params(nn.ModuleList(tail))
        return [body, params(model[1])] if body else [params(model[1])]
    stages, closing = tail[:n_stages], tail[n_stages:]
    if not closing:
        stages, closing = stages[:-1], stages[-1:]
    groups = [params(nn.ModuleList(stages)), params(nn.ModuleList(closing)), params(model[1])]
    if not groups[0]:
        raise ConfigError("train.trainable_stages=1 on a body without a final conv leaves the first of the three "
                          "learning-rate groups empty; use 2 or more")
    return groups


def fold_activations(model: nn.Sequential, cache: ImageCache, cfg: dict, size: int, mean, std,
                     device: torch.device) -> tuple[nn.Sequential, dict]:
    """(the trainable `nn.Sequential(tail, head)`, {view: activations}) for a fold's freshly built model."""
    train = cfg["train"]
    check_partial_config(train)
    tm, split = trainable_model(model, int(train["trainable_stages"]))
    spec = activation_spec(cfg["model"]["backbone"], split, size, mean, std, cfg["augment"], int(cfg["seed"]))
    run = prefix_pass(train)
    acts = prefix_activations(split, cache, training_views(cfg), spec, activation_store(cfg), run["batch_size"],
                              device, compile=run["compile"])
    return tm, acts


def partial_learner(model: nn.Sequential, cache: ImageCache, targets: np.ndarray, train_rows, valid_rows, cfg: dict,
                    size: int, mean, std, device: torch.device, fold_dir: Path) -> tuple[Learner, DataLoaders]:
    """The fold's Learner over the tail + head on cached activations, and its DataLoaders."""
    train = cfg["train"]
    tm, acts = fold_activations(model, cache, cfg, size, mean, std, device)
    views = [acts[v] for v in training_views(cfg)]
    dls = row_dataloaders(views, targets, train_rows, valid_rows, int(train["batch_size"]), device)
    learn = make_learner(tm, dls, train, fold_dir, device)
    # The optimizer is created at the first fit (or LR sweep), from whatever splitter is set then.
    learn.splitter = partial(tail_splitter, n_stages=int(train["trainable_stages"]))
    log.info("partial fine-tuning: last %d stage(s) + final conv + head on %d view(s) of cached activations "
             "(%s per image)", int(train["trainable_stages"]), len(views), "x".join(map(str, views[0].shape[1:])))
    return learn, dls
