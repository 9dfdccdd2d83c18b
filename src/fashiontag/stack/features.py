"""Penultimate features for the stacker: the final feature map `model[0](x)` pooled richly, cached.

Pools (config `stack.pool`, models/features.py): avg, max and grid2 (a 2x2 grid of averages). The seed's
point was to use more than the global average the CNN head sees.

Features are cached per fold model and image list as .npy (float32) with a JSON note of what they
depend on (model.pth md5, pools, image paths, input size); a changed model or list recomputes them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fashiontag.core.digest import cache_key
from fashiontag.core.files import atomic_open, atomic_write_json, file_md5, read_json
from fashiontag.core.skips import SkipReport
from fashiontag.data.loaders import view_loaders
from fashiontag.models.activations import partial_run, tail_features
from fashiontag.models.features import extract_features

log = logging.getLogger(__name__)

def _digest(paths: list[str], model_md5: str, pools: list[str], pre: dict) -> str:
    return cache_key([paths, model_md5, pools, pre.get("size"), pre.get("resize"), pre.get("mean")])


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
    if partial_run(cfg):  # a partially fine-tuned run: its tail on the frozen prefix's cached activations
        feats, kept = tail_features(model, pre, paths, cfg, device, local, pools)
    else:
        make_dl, kept = view_loaders(paths, pre, cfg, device, local)
        (feats,) = extract_features(model[0], make_dl(False), device, pools, what=f"stack features {fold_dir.name}")
    out = np.full((len(paths), feats.shape[1]), np.nan, dtype=np.float32)
    out[kept] = feats
    with atomic_open(cache_npy, "wb") as fh:
        np.save(fh, out)
    atomic_write_json(meta_path, {"digest": digest, "pools": pools, "n": len(paths), "dim": int(out.shape[1]),
                                  "model": str(fold_dir / "model.pth"), "bad": local.rows})
    skips.rows.extend(local.rows)
    log.info("features of %d images by %s: %d dims -> %s", len(paths), fold_dir.name, out.shape[1], cache_npy)
    return out
