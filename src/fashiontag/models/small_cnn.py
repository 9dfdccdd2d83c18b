"""The Fashion-MNIST write-ups' small CNNs (1, 3 and 4 conv layers) and the tutorial's variant, as timm models.

Registered with `timm.models.register_model` on import, so `model.backbone: fmnist_cnn3` goes through the
project's one training path (`models.build.build_model` -> fastai's `create_timm_model`), with
`model.pretrained: false`. They follow timm's model API: `num_classes=0` drops the classifier (the
project's head replaces it), `forward_features` returns the final feature map (B, C, H, W) for the
stacker and embeddings, `pretrained_cfg` carries the Fashion-MNIST mean/std (grayscale replicated to 3
channels, as the image pipeline decodes every image to RGB), and `pool_size` tells fastai to pool.

Layers: conv 3x3 + batch norm + ReLU blocks, max pooling and dropout after groups of them. The write-ups'
CNNs (Keras) use 'valid' convolutions and end in Flatten + Dense: here the Dense layer is a convolution
whose kernel covers the whole final map (the same function and parameter count, and it keeps the timm
contract: forward_features returns a (B, D, 1, 1) map). The tutorial's variant ('same' convolutions, global
average pooling) has no dense layer. The project head adds the rest (batch norm, dropout, hidden layers
from model.head_hidden, the classifier); softmax is in the loss/prediction (timm models return logits).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.layers import ClassifierHead, ConvNormAct
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

__all__ = ["FmnistCNN", "FMNIST_MEAN", "FMNIST_STD", "ARCHS", "Arch", "Stage"]

# Pixel statistics of the 60k Fashion-MNIST training images (0..1 scale), the same for all 3 channels.
FMNIST_MEAN = (0.2860, 0.2860, 0.2860)
FMNIST_STD = (0.3530, 0.3530, 0.3530)
IMG_SIZE = 28


@dataclass(frozen=True)
class Stage:
    widths: tuple[int, ...]  # one conv 3x3 + BN + ReLU per width
    pool: bool  # max pool 2x2 after the convs
    dropout: float  # dropout after the stage (0 = none)


@dataclass(frozen=True)
class Arch:
    stages: tuple[Stage, ...]
    padding: int  # 0: Keras 'valid' convolutions (the write-ups); 1: 'same' (the tutorial)
    dense: int | None  # Flatten + Dense(dense) as a whole-map convolution; None: global average pooling

    def final_size(self, img_size: int = IMG_SIZE) -> int:
        size = img_size
        for stage in self.stages:
            size -= 2 * (1 - self.padding) * len(stage.widths)
            size = size // 2 if stage.pool else size
        return size


ARCHS: dict[str, Arch] = {
    # conv 32 -> pool -> dropout 0.2 -> flatten -> dense 128 (head: -> classifier)
    "fmnist_cnn1": Arch((Stage((32,), True, 0.2),), padding=0, dense=128),
    # conv 32 -> pool -> conv 64 -> pool -> conv 128, dropout after each -> flatten -> dense 128
    "fmnist_cnn3": Arch((Stage((32,), True, 0.25), Stage((64,), True, 0.25), Stage((128,), False, 0.4)),
                        padding=0, dense=128),
    # conv 32, 32 -> pool | conv 64 | conv 128 -> pool, dropout after each -> flatten -> dense 512 (head: 128)
    "fmnist_cnn4": Arch((Stage((32, 32), True, 0.25), Stage((64,), False, 0.25), Stage((128,), True, 0.25)),
                        padding=0, dense=512),
    # the tutorial's variant: 'same' conv 32 -> pool -> conv 64 -> pool -> conv 128, global average pooling
    "fmnist_tutorial": Arch((Stage((32,), True, 0.25), Stage((64,), True, 0.25), Stage((128,), False, 0.4)),
                            padding=1, dense=None),
}


class FmnistCNN(nn.Module):
    """Stages of ConvNormAct blocks (+ MaxPool + Dropout), the optional dense stage, then timm's
    ClassifierHead (pool + fc)."""

    def __init__(self, arch: Arch, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0,
                 global_pool: str = "avg", img_size: int = IMG_SIZE):
        super().__init__()
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        blocks: list[nn.Module] = []
        channels, stride = in_chans, 1
        self.feature_info = []
        for i, stage in enumerate(arch.stages):
            layers: list[nn.Module] = []
            for width in stage.widths:
                layers.append(ConvNormAct(channels, width, kernel_size=3, padding=arch.padding))
                channels = width
            if stage.pool:
                layers.append(nn.MaxPool2d(2))
                stride *= 2
            if stage.dropout:
                layers.append(nn.Dropout(stage.dropout))
            blocks.append(nn.Sequential(*layers))
            self.feature_info.append({"num_chs": channels, "reduction": stride, "module": f"stages.{i}"})
        if arch.dense:
            # Flatten + Dense over the whole final map, written as the equivalent convolution.
            size = arch.final_size(img_size)
            blocks.append(nn.Sequential(ConvNormAct(channels, arch.dense, kernel_size=size, padding=0)))
            channels = arch.dense
            self.feature_info.append({"num_chs": channels, "reduction": img_size, "module": f"stages.{len(blocks) - 1}"})
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


def fmnist_cfg(pool: int, first_conv: str = "stages.0.0.conv") -> dict:
    """timm pretrained_cfg of a Fashion-MNIST model whose final map is pool x pool (no weights to download)."""
    return {
        "url": "", "num_classes": 10, "input_size": (3, IMG_SIZE, IMG_SIZE), "pool_size": (pool, pool),
        "crop_pct": 1.0, "interpolation": "bilinear", "mean": FMNIST_MEAN, "std": FMNIST_STD,
        "first_conv": first_conv, "classifier": "head.fc", "license": "apache-2.0",
    }


default_cfgs = generate_default_cfgs({
    name: fmnist_cfg(1 if arch.dense else arch.final_size()) for name, arch in ARCHS.items()
})


def _create(variant: str, pretrained: bool, **kwargs) -> FmnistCNN:
    # build_model_with_cfg gives the timm extras: pretrained_cfg, a local file through
    # pretrained_cfg_overlay=dict(file=...), features_only; there are no published weights to download.
    return build_model_with_cfg(FmnistCNN, variant, pretrained, arch=ARCHS[variant], **kwargs)


@register_model
def fmnist_cnn1(pretrained: bool = False, **kwargs) -> FmnistCNN:
    """1 conv layer (32) -> max pool -> dropout 0.2 -> flatten -> dense 128 -> classifier."""
    return _create("fmnist_cnn1", pretrained, **kwargs)


@register_model
def fmnist_cnn3(pretrained: bool = False, **kwargs) -> FmnistCNN:
    """3 conv layers (32, 64, 128) with max pooling and dropout -> flatten -> dense 128 -> classifier."""
    return _create("fmnist_cnn3", pretrained, **kwargs)


@register_model
def fmnist_cnn4(pretrained: bool = False, **kwargs) -> FmnistCNN:
    """4 conv layers (32, 32 | 64 | 128) with batch norm, two max pools and dropout -> flatten -> dense 512."""
    return _create("fmnist_cnn4", pretrained, **kwargs)


@register_model
def fmnist_tutorial(pretrained: bool = False, **kwargs) -> FmnistCNN:
    """The tutorial's variant: 'same' conv 32, 64, 128 with batch norm, pooling, dropout -> global average pool."""
    return _create("fmnist_tutorial", pretrained, **kwargs)
