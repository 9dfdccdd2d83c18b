"""Penultimate features for the stacker: the final feature map `model[0](x)` pooled richly, cached.

Pools (config `stack.pool`): avg (global average, C values), max (global max, C), grid2 (2x2 grid of
averages, 4C: where on the garment a feature fires, e.g. a hem low in the picture for knee vs midi).
The seed's point was to use more than the global average the CNN head sees.

Features are cached per fold model and image list as .npy (float32) with a JSON note of what they
depend on (model.pth md5, pools, image paths, input size); a changed model or list recomputes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fashiontag.core.errors import ConfigError, FashiontagError
from fashiontag.core.files import atomic_open, atomic_write_json, file_md5, read_json
from fashiontag.core.skips import SkipReport
from fashiontag.data.loaders import view_loaders
from fashiontag.models.tta import run_batches

log = logging.getLogger(__name__)

POOLS = ("avg", "max", "grid2")


def pool_features(fmap: torch.Tensor, pools: list[str]) -> torch.Tensor:
    """(B, C, H, W) feature map -> (B, D) concatenation of the requested poolings."""
    if fmap.ndim != 4:
        raise FashiontagError(f"the stacker needs a CNN feature map (B, C, H, W); model[0] gave shape "
                              f"{tuple(fmap.shape)} (token-based backbones are not supported)")
    parts = []
    for pool in pools:
        if pool == "avg":
            parts.append(F.adaptive_avg_pool2d(fmap, 1).flatten(1))
        elif pool == "max":
            parts.append(F.adaptive_max_pool2d(fmap, 1).flatten(1))
        elif pool == "grid2":
            parts.append(F.adaptive_avg_pool2d(fmap, 2).flatten(1))
        else:
            raise ConfigError(f"stack.pool entries must be among {POOLS}, got {pool!r}")
    return torch.cat(parts, dim=1).float()


def extract_features(model: nn.Module, dl, device: torch.device, pools: list[str]) -> np.ndarray:
    """(rows, D) float32 pooled features of `model[0]` over a plain (un-augmented) loader."""
    body = model[0]
    (feats,) = run_batches(lambda x: [pool_features(body(x), pools)], dl, device)
    return feats.astype(np.float32)


def _digest(paths: list[str], model_md5: str, pools: list[str], pre: dict) -> str:
    blob = json.dumps([paths, model_md5, pools, pre.get("size"), pre.get("resize"), pre.get("mean")])
    return hashlib.sha1(blob.encode()).hexdigest()


def fold_features(model: nn.Module, pre: dict, fold_dir: Path, paths: list[str], cfg: dict,
                  device: torch.device, cache_npy: Path, skips: SkipReport) -> np.ndarray:
    """Features of `paths` by one fold's model, from `cache_npy` when it matches; bad images -> NaN rows."""
    pools = list(cfg["stack"]["pool"])
    digest = _digest(paths, file_md5(fold_dir / "model.pth"), pools, pre)
    meta_path = cache_npy.with_suffix(".json")
    if cache_npy.exists() and meta_path.exists() and read_json(meta_path).get("digest") == digest:
        meta = read_json(meta_path)
        for bad in meta.get("bad", []):  # unreadable images are re-reported on reuse
            skips.rows.append(bad)
        log.info("features reused: %s", cache_npy)
        return np.load(cache_npy)
    local = SkipReport(skip=skips.skip)
    make_dl, kept = view_loaders(paths, pre, cfg, device, local)
    feats = extract_features(model, make_dl(False), device, pools)
    out = np.full((len(paths), feats.shape[1]), np.nan, dtype=np.float32)
    out[kept] = feats
    with atomic_open(cache_npy, "wb") as fh:
        np.save(fh, out)
    atomic_write_json(meta_path, {"digest": digest, "pools": pools, "n": len(paths), "dim": int(out.shape[1]),
                                  "model": str(fold_dir / "model.pth"), "bad": local.rows})
    skips.rows.extend(local.rows)
    log.info("features of %d images by %s: %d dims -> %s", len(paths), fold_dir.name, out.shape[1], cache_npy)
    return out
