"""Pooled body features: the one extractor behind the stacker, the feature cache and the embeddings.

A fold model is `nn.Sequential(body, head)`; `body(x)` is the final CNN feature map (B, C, H, W). Its
pooled features are what the XGBoost stacker learns from (stack/features.py, config `stack.pool`), what
the feature cache stores so a frozen body runs once (train/feature_cache.py, the head's own pooling),
and what `embed` projects (infer/embed.py, the average).

Pools: avg (global average, C values), max (global max, C), grid2 (2x2 grid of averages, 4C: where on the
garment a feature fires, e.g. a hem low in the picture for knee vs midi).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fashiontag.core.errors import ConfigError, FashiontagError
from fashiontag.models.tta import run_batches

POOLS = ("avg", "max", "grid2")
# The classifier head's pooling (model.pool) as pools: fastai's AdaptiveConcatPool2d concatenates max then avg.
HEAD_POOLS = {"avg": ["avg"], "concat": ["max", "avg"]}


def pool_features(fmap: torch.Tensor, pools: Sequence[str]) -> torch.Tensor:
    """(B, C, H, W) feature map -> (B, D) float32 concatenation of the requested poolings."""
    if fmap.ndim != 4:
        raise FashiontagError(f"pooled features need a CNN feature map (B, C, H, W); the body gave shape "
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
            raise ConfigError(f"pool entries must be among {POOLS}, got {pool!r}")
    return torch.cat(parts, dim=1).float()


def head_pools(head_pool: str) -> list[str]:
    """The pools that reproduce a classifier head's pooling (`model.pool`: avg or concat)."""
    if head_pool not in HEAD_POOLS:
        raise ConfigError(f"model.pool must be one of {tuple(HEAD_POOLS)}, got {head_pool!r}")
    return list(HEAD_POOLS[head_pool])


def extract_features(body: nn.Module, dl, device: torch.device, pools: Sequence[str],
                     flips: Sequence[bool] = (False,), what: str = "features") -> list[np.ndarray]:
    """(rows, D) float32 pooled features of `body` over a loader, one array per entry of `flips` (True: of
    the horizontally flipped batch; one pass over the loader serves every entry); `what` names its progress."""
    def fn(x: torch.Tensor) -> list[torch.Tensor]:
        return [pool_features(body(x.flip(-1) if flip else x), pools) for flip in flips]

    return [feats.astype(np.float32) for feats in run_batches(fn, dl, device, what)]


def body_digest(body: nn.Module) -> str:
    """sha1 of the body's weights and BatchNorm statistics: its features are a function of exactly these."""
    h = hashlib.sha1()
    for name, tensor in body.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
