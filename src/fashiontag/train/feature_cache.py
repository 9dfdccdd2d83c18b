"""Frozen-body training on cached features (`train.feature_cache: true`): the fast path for CPUs.

When the body never trains (one stage, no unfrozen epochs), its output for a given input never changes,
so recomputing it every epoch spends nearly all of a CPU's time on the same numbers. Here the body's pooled
features (the head's own pooling: avg, or fastai's concat) of `train.feature_views` views of every image
are computed once and stored under `<cache.dir>/features/`: view 0 is the plain image, view 1 its
horizontal flip (when augment.flip), the rest are the seeded augmented views TTA also uses (view i of
`infer.tta.view_seed`). Each view is its own file keyed by everything it depends on (image cache, backbone,
weights, size, normalisation, pooling, augmentation, seed), so every fold, every rerun and every run with
the same body reuse it, and an interrupted extraction resumes at the next missing view.

fastai then trains the head alone on those features; each epoch shows every image as one of its views at
random (augmentation at feature level). The body keeps its ImageNet BatchNorm statistics (eval mode), as
with `train_bn: false`. The fold still saves the whole body + head as model.pth, so predict, TTA, stack
and tag use it unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path

import numpy as np
import torch
from fastai.data.core import TfmdDL
from torch import nn

from fashiontag.core.digest import cache_key
from fashiontag.core.errors import ConfigError
from fashiontag.core.files import atomic_open, atomic_write_json, read_json
from fashiontag.data.cache import ImageCache
from fashiontag.data.loaders import CachedImage, image_loader
from fashiontag.models.features import body_digest, extract_features, head_pools
from fashiontag.models.tta import seeded, view_seed

log = logging.getLogger(__name__)

FEATURES_DIR = "features"


def check_feature_cache_config(train: dict) -> None:
    """Feature caching is exact only while the body is frozen throughout: one stage, no unfrozen epochs."""
    problems = []
    if int(train["unfrozen_epochs"]) > 0:
        problems.append(f"train.unfrozen_epochs={train['unfrozen_epochs']} (must be 0: the body would change)")
    if len(train["stages"]) != 1:
        problems.append(f"train.stages={train['stages']} (needs exactly one size)")
    if int(train["frozen_epochs"]) <= 0:
        problems.append("train.frozen_epochs must be > 0 (the head is all that trains)")
    if int(train["feature_views"]) < 1:
        problems.append("train.feature_views must be >= 1")
    if float(train["cutmix"]):
        problems.append("train.cutmix must be 0 (it pastes boxes of feature maps; on pooled vectors use train.mixup)")
    if problems:
        raise ConfigError("train.feature_cache: true trains the head on cached body features, so: "
                          + "; ".join(problems))


def view_names(n_views: int, flip: bool) -> list[str]:
    """['orig', 'flip', 'aug0', 'aug1', ...]: n_views names (the flip only when the augmentation flips)."""
    names = ["orig"] + (["flip"] if flip else [])
    names += [f"aug{i}" for i in range(max(0, n_views - len(names)))]
    return names[:n_views]


def feature_key(cache: ImageCache, spec: dict) -> str:
    """What every view file depends on (the image cache file already encodes the image list and size; a view
    of a larger cache adds which of its rows)."""
    rows = None if cache.rows is None else hashlib.sha1(np.asarray(cache.rows, np.int64).tobytes()).hexdigest()
    return cache_key([Path(cache.path).name, spec] + ([rows] if rows else []), length=16)


def _loader(cache: ImageCache, size: int, mean, std, aug: dict | None, batch_size: int,
            device: torch.device) -> TfmdDL:
    return image_loader(CachedImage(cache), range(len(cache)), size, mean, std, aug, batch_size, device)


def _save_view(path: Path, feats: np.ndarray, meta: dict) -> None:
    with atomic_open(path, "wb") as fh:
        np.save(fh, feats.astype(np.float32))
    atomic_write_json(path.with_suffix(".json"), meta)


def cached_features(model: nn.Sequential, cache: ImageCache, cfg: dict, size: int, mean, std,
                    device: torch.device) -> np.ndarray:
    """(views, images, dims) float32 pooled body features of every cache row, computed once per view."""
    train, aug = cfg["train"], cfg["augment"]
    names = view_names(int(train["feature_views"]), bool(aug["flip"]))
    seed = int(cfg["seed"])
    spec = {"backbone": cfg["model"]["backbone"], "body": body_digest(model[0]), "size": size, "mean": list(mean),
            "std": list(std), "pool": cfg["model"]["pool"], "augment": aug, "seed": seed}
    key = feature_key(cache, spec)
    out_dir = Path(cfg["cache"]["dir"]) / FEATURES_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {n: out_dir / f"{cfg['model']['backbone']}_{size}px_{key}_{n}.npy" for n in names}
    # The loader yields batches on `device`, so the body goes there too (the model is built on the CPU; the
    # head then trains on `device` from features, and model.pth is saved as CPU tensors anyway).
    body, pools = model[0].eval().to(device), head_pools(cfg["model"]["pool"])  # the head's own pooling
    body.to(memory_format=torch.channels_last)  # run_batches feeds channels_last batches (~2x faster on CPU)
    todo = [n for n in names if not (paths[n].exists() and read_json(paths[n].with_suffix(".json")).get("key") == key)]
    if todo:
        # Extraction draws from python's and torch's random streams (fastai loaders, augmentations); restore
        # both so training continues identically whether the features were computed now or read from disk.
        state = random.getstate()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            _extract(todo, names, paths, body, pools, cache, cfg, size, mean, std, device, key, spec)
        random.setstate(state)
    return np.stack([np.load(paths[n], mmap_mode="r") for n in names])


def _extract(todo: list[str], names: list[str], paths: dict[str, Path], body: nn.Module, pools: list[str],
             cache: ImageCache, cfg: dict, size: int, mean, std, device: torch.device, key: str,
             spec: dict) -> None:
    """Compute and save the missing views `todo` (orig and flip share one plain pass)."""
    out_dir, aug, seed = paths[names[0]].parent, cfg["augment"], int(cfg["seed"])
    log.info("feature cache: %d of %d views of %d images to compute (%s, %d px) -> %s", len(todo), len(names),
             len(cache), spec["backbone"], size, out_dir)
    bs = int(cfg["train"]["batch_size"])
    meta = {"key": key, "spec": spec, "n": len(cache), "cache": str(cache.path)}
    plain = [n for n in todo if n in ("orig", "flip")]
    if plain:
        loader = _loader(cache, size, mean, std, None, bs, device)
        flips = [n == "flip" for n in plain]
        for n, feats in zip(plain, extract_features(body, loader, device, pools, flips,
                                                    f"feature cache {'+'.join(plain)}"), strict=True):
            _save_view(paths[n], feats, {**meta, "view": n})
            log.info("feature cache: view %s done", n)
    for n in todo:
        if n in plain:
            continue
        index = int(n[3:])  # aug<i> is TTA's augmented view i: the same seed, so the same images
        with seeded(view_seed(seed, index), device):
            (feats,) = extract_features(body, _loader(cache, size, mean, std, aug, bs, device), device, pools,
                                        what=f"feature cache {n}")
        _save_view(paths[n], feats, {**meta, "view": n})
        log.info("feature cache: view %s done", n)


def head_only(model: nn.Sequential) -> nn.Sequential:
    """The head after its pooling and flatten: the module trained on cached features (shares parameters)."""
    # Iterate the Sequential itself: children() de-duplicates, and fastai's head reuses one ReLU object.
    return nn.Sequential(*list(model[1])[2:])
