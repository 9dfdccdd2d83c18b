"""The fastai Learner: timm body + seed head, a three-group splitter, soft-target loss, precision.

The model comes from `models.build.build_model` (fastai's own `create_timm_model`, i.e. what
`vision_learner(dls, "<timm name>")` builds) so prediction rebuilds it from a fold dir; the Learner is
then assembled with our splitter instead of fastai's default two-group (body, head) split, because the
seed recipe's differential learning rates need three groups: [early body, late body, head].
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from fastai.callback.fp16 import MixedPrecision
from fastai.callback.mixup import CutMix, MixUp
from fastai.callback.training import BnFreeze
from fastai.learner import Learner
from fastai.torch_core import params, trainable_params
from torch import nn

from fashiontag.core.errors import ConfigError
from fashiontag.train.optim import make_opt_func
from fashiontag.train.recording import PlainBatch, use_device_recorder

log = logging.getLogger(__name__)


class SoftTargetCrossEntropy(nn.Module):
    """Cross-entropy against probability targets (one-hot or 'm'-soft), with label smoothing.

    torch's F.cross_entropy accepts class probabilities as the target and applies the smoothing itself.
    `activation`/`decodes` let fastai's get_preds return probabilities and class indices.
    """

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = float(label_smoothing)

    def forward(self, pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(pred.float(), targ.float(), label_smoothing=self.label_smoothing)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(x.float(), dim=-1)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        return x.argmax(dim=-1)


def soft_accuracy(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    """Accuracy against the target's argmax (the 'y' value, since maybe_weight < 0.5)."""
    return (inp.argmax(dim=-1) == targ.argmax(dim=-1)).float().mean()


soft_accuracy.__name__ = "accuracy"


def body_groups(body: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Split a timm body's parameters into (early, late) halves along its own coarse layer groups.

    timm's `group_matcher(coarse=True)` names the stem and stages in forward order (e.g. resnet: stem,
    layer1..layer4); the first ceil(n/2) groups are "early" (resnet: up to layer2, as fastai's own resnet
    split). Bodies without a matcher are split in half by parameter tensors in registration order.
    """
    from timm.models import group_parameters

    timm_model = getattr(body, "model", body)
    named = dict(timm_model.named_parameters())
    order: list[list[str]] = []
    if hasattr(timm_model, "group_matcher"):
        try:
            groups = group_parameters(timm_model, timm_model.group_matcher(coarse=True))
            order = [groups[k] for k in sorted(groups)]
        except (NotImplementedError, AttributeError, TypeError):
            order = []
    if len(order) < 2:
        names = list(named)
        half = max(1, len(names) // 2)
        order = [names[:half], names[half:]]
    cut = (len(order) + 1) // 2
    early_names = {n for g in order[:cut] for n in g}
    early = [p for n, p in named.items() if n in early_names]
    late = [p for n, p in named.items() if n not in early_names]
    return early, late


def three_group_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """fastai splitter: [early body, late body, head] for `nn.Sequential(TimmBody, head)`."""
    early, late = body_groups(model[0])
    return [early, late, params(model[1])]


def make_learner(model: nn.Module, dls, train_cfg: dict, path, device: torch.device,
                 head_only: bool = False) -> Learner:
    """A Learner with the soft-target loss, accuracy metric, three-group splitter and the precision policy.

    head_only: `model` is a head trained on cached features (train/feature_cache.py): one parameter group
    and flat (B, D) inputs, so no body split and no channels_last.
    The optimizer is torch's AdamW/SGD behind fastai's OptimWrapper (train/optim.py); losses and metrics
    stay on the device between reads (train/recording.py).
    """
    model.to(device)  # before the optimizer exists: fused kernels need the parameters on their device
    learn = Learner(
        dls, model, loss_func=SoftTargetCrossEntropy(train_cfg["label_smoothing"]),
        opt_func=make_opt_func(train_cfg["optimizer"], model, device), metrics=[soft_accuracy],
        splitter=trainable_params if head_only else three_group_splitter,
        wd=float(train_cfg["weight_decay"]), path=path, model_dir="ckpt",
        train_bn=bool(train_cfg["train_bn"]),
    )
    if not train_cfg["train_bn"]:
        # Frozen BatchNorm layers also keep their ImageNet running statistics (eval mode): on a few hundred
        # images, re-estimating them from small augmented batches costs more than it brings.
        learn.add_cb(BnFreeze())
    mixing = mixing_callback(train_cfg)
    if mixing is not None:
        learn.add_cb(mixing)
    use_device_recorder(learn, [soft_accuracy])
    apply_precision(learn, train_cfg, device, channels_last=not head_only)
    if train_cfg["compile"] and not head_only:
        # In place (nn.Module.compile), so state_dict keys, checkpoints and model.pth are unchanged; the
        # first batches of each input shape pay the compilation (make bench BENCH_ARGS=--compile measures it).
        learn.model.compile()
    return learn


def mixing_callback(train_cfg: dict) -> MixUp | CutMix | None:
    """fastai's MixUp or CutMix callback for train.mixup / train.cutmix (their Beta alpha; 0 = off).

    Both blend the soft targets themselves (the loss takes probabilities), and run on training batches only.
    CutMix on pooled features is refused before they are computed (train/feature_cache.check_feature_cache_config).
    """
    mixup, cutmix = float(train_cfg["mixup"]), float(train_cfg["cutmix"])
    if mixup and cutmix:
        raise ConfigError(f"train.mixup={mixup} and train.cutmix={cutmix}: use one of them (set the other to 0)")
    if mixup:
        return MixUp(mixup)
    return CutMix(cutmix) if cutmix else None


def apply_precision(learn: Learner, train_cfg: dict, device: torch.device, channels_last: bool = True) -> str:
    """bf16/fp16 autocast on a GPU, plain fp32 on the CPU (autocast there is slow); channels_last on both
    (train.channels_last): tensor cores on a GPU, and oneDNN on the CPU trains efficientnet_lite0 ~1.5x faster
    in it (15.5 vs 10.2 img/s at 224 px, batch 16, 2 cores; scripts/bench_steps.py's models, 2026-11-23).

    Weights stay fp32 (autocast casts per op), so checkpoints and model.pth are fp32 whatever was used.
    """
    precision = train_cfg["precision"]
    if precision not in ("bf16", "fp16", "fp32"):
        raise ConfigError(f"train.precision must be bf16, fp16 or fp32, got {precision!r}")
    if device.type != "cuda":
        precision = "fp32"
    elif precision == "bf16" and not torch.cuda.is_bf16_supported():
        log.warning("this GPU has no bf16: training in fp16 with a gradient scaler")
        precision = "fp16"
    if precision != "fp32":
        learn.add_cb(MixedPrecision(amp_mode=precision))
    channels_last = bool(channels_last and train_cfg["channels_last"])
    if channels_last:
        learn.model.to(memory_format=torch.channels_last)
    learn.add_cb(PlainBatch(channels_last))
    learn.precision = precision
    return precision
