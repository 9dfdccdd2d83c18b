"""The Fashion-MNIST write-ups' small CNNs (1, 3 and 4 conv layers) as timm models.

Registered with `timm.models.register_model` on import, so `model.backbone: fmnist_cnn3` goes through the
project's one training path (`models.build.build_model` -> fastai's `create_timm_model`), with
`model.pretrained: false`. They follow timm's model API: `num_classes=0` drops the classifier (the
project's head replaces it), `forward_features` returns the final feature map (B, C, H, W) for the
stacker and embeddings, `pretrained_cfg` carries the Fashion-MNIST mean/std (grayscale replicated to 3
channels, as the image pipeline decodes every image to RGB), and `pool_size` tells fastai to pool.

Layers: conv 3x3 + batch norm + ReLU blocks, max pooling and dropout after groups of them, global
average pooling, then the classifier. The softmax of the write-ups is in the loss/prediction (timm
models return logits).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import ClassifierHead, ConvNormAct
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

__all__ = ["FmnistCNN", "FMNIST_MEAN", "FMNIST_STD", "ARCHS"]

# Pixel statistics of the 60k Fashion-MNIST training images (0..1 scale), the same for all 3 channels.
FMNIST_MEAN = (0.2860, 0.2860, 0.2860)
FMNIST_STD = (0.3530, 0.3530, 0.3530)

# (conv widths, max-pool after, dropout after) per stage; the write-ups' 1-, 3- and 4-conv layouts.
ARCHS: dict[str, list[tuple[tuple[int, ...], bool, float]]] = {
    "fmnist_cnn1": [((32,), True, 0.2)],
    "fmnist_cnn3": [((32,), True, 0.25), ((64,), True, 0.25), ((128,), False, 0.4)],
    "fmnist_cnn4": [((32, 32), True, 0.25), ((64,), False, 0.25), ((128,), True, 0.25)],
}


class FmnistCNN(nn.Module):
    """Stages of ConvNormAct blocks (+ MaxPool + Dropout), then timm's ClassifierHead (pool + fc)."""

    def __init__(
        self,
        stages: Sequence[tuple[Sequence[int], bool, float]],
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ):
        super().__init__()
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        blocks: list[nn.Module] = []
        channels, stride = in_chans, 1
        self.feature_info = []
        for i, (widths, pool, dropout) in enumerate(stages):
            layers: list[nn.Module] = []
            for width in widths:
                layers.append(ConvNormAct(channels, width, kernel_size=3, padding=1))
                channels = width
            if pool:
                layers.append(nn.MaxPool2d(2))
                stride *= 2
            if dropout:
                layers.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*layers))
            self.feature_info.append({"num_chs": channels, "reduction": stride, "module": f"stages.{i}"})
        self.stages = nn.Sequential(*blocks)
        self.num_features = self.head_hidden_size = channels
        self.head = ClassifierHead(channels, num_classes, pool_type=global_pool, drop_rate=drop_rate)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        # One group per stage: the project's splitter puts the first half of them in the "early" group.
        return {"stem": r"^stages\.0", "blocks": r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.(\d+)"}

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(pool: int) -> dict:
    return {
        "url": "", "num_classes": 10, "input_size": (3, 28, 28), "pool_size": (pool, pool), "crop_pct": 1.0,
        "interpolation": "bilinear", "mean": FMNIST_MEAN, "std": FMNIST_STD,
        "first_conv": "stages.0.0.conv", "classifier": "head.fc", "license": "apache-2.0",
    }


default_cfgs = generate_default_cfgs({
    "fmnist_cnn1": _cfg(14),
    "fmnist_cnn3": _cfg(7),
    "fmnist_cnn4": _cfg(7),
})


def _create(variant: str, pretrained: bool, **kwargs) -> FmnistCNN:
    # build_model_with_cfg gives the timm extras: pretrained_cfg, a local file through
    # pretrained_cfg_overlay=dict(file=...), features_only; there are no published weights to download.
    return build_model_with_cfg(FmnistCNN, variant, pretrained, stages=ARCHS[variant], **kwargs)


@register_model
def fmnist_cnn1(pretrained: bool = False, **kwargs) -> FmnistCNN:
    """1 conv layer (32) -> max pool -> dropout 0.2 -> GAP -> classifier."""
    return _create("fmnist_cnn1", pretrained, **kwargs)


@register_model
def fmnist_cnn3(pretrained: bool = False, **kwargs) -> FmnistCNN:
    """3 conv layers (32, 64, 128) with max pooling and dropout after each -> GAP -> classifier."""
    return _create("fmnist_cnn3", pretrained, **kwargs)


@register_model
def fmnist_cnn4(pretrained: bool = False, **kwargs) -> FmnistCNN:
    """4 conv layers (32, 32 | 64 | 128) with batch norm, two max pools and dropout -> GAP -> classifier."""
    return _create("fmnist_cnn4", pretrained, **kwargs)
