"""Small wide ResNets for 28x28 images (Fashion-MNIST), registered as timm models like models/small_cnn.py.

Pre-activation basic blocks (BN-ReLU-conv 3x3, twice, plus the identity or a 1x1 projection), the layout of
Zagoruyko & Komodakis' Wide ResNets: a 3x3 stem at full resolution, three stages at 28, 14 and 7 px
(stride 2 at the start of stages 2 and 3), `blocks` per stage, widths (16k, 32k, 64k) for widening k, a
final BN-ReLU. `fmnist_wrn<depth>_<k>` has depth = 6 * blocks + 4. The project head (pooling, batch norm,
dropout, classifier) goes on top; `forward_features` returns the (B, 64k, 7, 7) map.

Cost per 28x28 image (forward multiply-adds): wrn10_2 ~36M, wrn16_2 ~79M, wrn16_4 ~310M, wrn28_10 ~5.2G.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import ClassifierHead
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from fashiontag.models.small_cnn import fmnist_cfg

__all__ = ["SmallWideResNet", "WRN_ARCHS"]

# name -> (blocks per stage, widening factor)
WRN_ARCHS: dict[str, tuple[int, int]] = {
    "fmnist_wrn10_2": (1, 2),
    "fmnist_wrn16_2": (2, 2),
    "fmnist_wrn16_4": (2, 4),
    "fmnist_wrn28_10": (4, 10),
}


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, drop: float):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.drop = drop
        self.shortcut = None if cin == cout and stride == 1 else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = F.relu(self.bn2(self.conv1(out)))
        if self.drop:
            out = F.dropout(out, self.drop, self.training)
        return self.conv2(out) + skip


class SmallWideResNet(nn.Module):
    def __init__(self, blocks: int, widen: int, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0,
                 block_drop: float = 0.0, global_pool: str = "avg"):
        super().__init__()
        self.num_classes, self.drop_rate = num_classes, drop_rate
        widths = [16 * widen, 32 * widen, 64 * widen]
        self.stem = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        stages, cin, self.feature_info = [], 16, []
        for i, width in enumerate(widths):
            layers = [PreActBlock(cin if j == 0 else width, width, 2 if (i and j == 0) else 1, block_drop)
                      for j in range(blocks)]
            cin = width
            stages.append(nn.Sequential(*layers))
            self.feature_info.append({"num_chs": width, "reduction": 2 ** i, "module": f"stages.{i}"})
        self.stages = nn.Sequential(*stages)
        self.norm = nn.BatchNorm2d(cin)
        self.num_features = self.head_hidden_size = cin
        self.head = ClassifierHead(cin, num_classes, pool_type=global_pool, drop_rate=drop_rate)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return {"stem": r"^stem", "blocks": [(r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.(\d+)", None),
                                             (r"^norm", (99999,))]}

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.stages(self.stem(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


default_cfgs = generate_default_cfgs({name: fmnist_cfg(7, first_conv="stem") for name in WRN_ARCHS})


def _create(variant: str, pretrained: bool, **kwargs) -> SmallWideResNet:
    blocks, widen = WRN_ARCHS[variant]
    return build_model_with_cfg(SmallWideResNet, variant, pretrained, blocks=blocks, widen=widen, **kwargs)


@register_model
def fmnist_wrn10_2(pretrained: bool = False, **kwargs) -> SmallWideResNet:
    """WRN-10-2: one pre-activation block per stage, widths 32, 64, 128."""
    return _create("fmnist_wrn10_2", pretrained, **kwargs)


@register_model
def fmnist_wrn16_2(pretrained: bool = False, **kwargs) -> SmallWideResNet:
    """WRN-16-2: two blocks per stage, widths 32, 64, 128."""
    return _create("fmnist_wrn16_2", pretrained, **kwargs)


@register_model
def fmnist_wrn16_4(pretrained: bool = False, **kwargs) -> SmallWideResNet:
    """WRN-16-4: two blocks per stage, widths 64, 128, 256."""
    return _create("fmnist_wrn16_4", pretrained, **kwargs)


@register_model
def fmnist_wrn28_10(pretrained: bool = False, **kwargs) -> SmallWideResNet:
    """WRN-28-10: four blocks per stage, widths 160, 320, 640 (a GPU model)."""
    return _create("fmnist_wrn28_10", pretrained, **kwargs)
