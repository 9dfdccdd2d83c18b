"""Partial fine-tuning: a timm body cut into a frozen prefix and a trainable tail.

`train.trainable_stages: n` trains only the body's last n stages (plus its final conv/BN, when it has
one) and the head. Everything before the cut never changes, so its output for a given image is a fixed
function of the pixels: it is computed once per view (`prefix_activations`, stored by
`data.activation_cache`) and every fold, epoch and prediction runs only the tail on it. The tail and the
prefix are views of the one model (shared modules), so the fold still saves the whole body + head as
model.pth and predict, tag and embed load it unchanged.

Stages are the body's own coarse stages in forward order: an EfficientNet/MobileNet's `blocks[i]`
(the stem before them, conv_head + bn2 after them, always trainable), a ResNet's layer1..layer4.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fashiontag.core.errors import ConfigError
from fashiontag.core.progress import Progress
from fashiontag.data.activation_cache import ActivationStore, ActivationWriter
from fashiontag.data.cache import ImageCache
from fashiontag.data.loaders import CachedImage, image_loader
from fashiontag.models.tta import seeded, view_seed

log = logging.getLogger(__name__)

EFFICIENTNET = ("conv_stem", "bn1", "blocks", "conv_head", "bn2")
RESNET = ("conv1", "bn1", "act1", "maxpool", "layer1")


@dataclass
class BodySplit:
    """A body cut before its last `n_trainable` stages; both halves share the body's modules."""

    prefix: nn.Sequential  # frozen: normalised image -> activation at the cut
    tail: nn.Sequential    # trainable: activation -> the final feature map model[0] returns
    n_stages: int
    n_trainable: int


def body_parts(body: nn.Module) -> tuple[list[nn.Module], list[nn.Module], list[nn.Module]]:
    """(stem modules, stages, closing modules) of a fastai TimmBody (or a bare timm model) in forward order."""
    m = getattr(body, "model", body)
    if all(hasattr(m, a) for a in EFFICIENTNET):
        return [m.conv_stem, m.bn1], list(m.blocks), [m.conv_head, m.bn2]
    if all(hasattr(m, a) for a in RESNET):
        layers = [getattr(m, f"layer{i}") for i in range(1, 5) if hasattr(m, f"layer{i}")]
        return [m.conv1, m.bn1, m.act1, m.maxpool], layers, []
    raise ConfigError(f"train.trainable_stages: cannot cut a {type(m).__name__} body into stages (supported: "
                      "EfficientNet/MobileNet-style bodies with blocks, ResNets with layer1..4)")


def split_body(body: nn.Module, n_trainable: int) -> BodySplit:
    """The body cut so that its last `n_trainable` stages (0 = only conv_head/bn2) form the tail.

    A body that is frozen as a whole (models.multilayer.MultiLayerBody) is all prefix: n must be 0, the tail
    is empty and only the head trains."""
    if getattr(body, "frozen_whole", False):
        if int(n_trainable) != 0:
            raise ConfigError(f"train.trainable_stages={n_trainable}: a model.feature_layers body stays frozen "
                              "as a whole (use 0: its pooled multi-layer output is cached, the head trains)")
        return BodySplit(nn.Sequential(body), nn.Sequential(), 0, 0)
    stem, stages, closing = body_parts(body)
    n = int(n_trainable)
    if not 0 <= n <= len(stages):
        raise ConfigError(f"train.trainable_stages={n_trainable}: this body has {len(stages)} stages (0..{len(stages)})")
    if n == 0 and not closing:
        raise ConfigError("train.trainable_stages=0 leaves nothing of this body to train; use 1 or more")
    cut = len(stages) - n
    return BodySplit(nn.Sequential(*stem, *stages[:cut]), nn.Sequential(*stages[cut:], *closing),
                     len(stages), n)


def trainable_model(model: nn.Sequential, n_trainable: int) -> tuple[nn.Sequential, BodySplit]:
    """`nn.Sequential(tail, head)` of a `nn.Sequential(body, head)` model (parameters shared) and the split."""
    split = split_body(model[0], n_trainable)
    return nn.Sequential(split.tail, model[1]), split


def module_digest(module: nn.Module) -> str:
    """sha1 of a module's weights and BatchNorm statistics: its output is a function of exactly these."""
    h = hashlib.sha1()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def view_names(n_views: int, flip: bool) -> list[str]:
    """['orig', 'flip', 'aug0', 'aug1', ...]: n_views names (the flip only when the augmentation flips)."""
    names = ["orig"] + (["flip"] if flip else [])
    names += [f"aug{i}" for i in range(max(0, n_views - len(names)))]
    return names[:n_views]


def activation_spec(backbone: str, split: BodySplit, size: int, mean: Sequence[float], std: Sequence[float],
                    aug: dict | None, seed: int) -> dict:
    """Everything a cached activation depends on besides the images and the view name."""
    return {"backbone": backbone, "prefix": module_digest(split.prefix), "cut": split.n_stages - split.n_trainable,
            "size": int(size), "mean": [float(v) for v in mean], "std": [float(v) for v in std],
            "augment": aug, "seed": int(seed)}


def prefix_pass(train: dict) -> dict:
    """The prefix pass's settings from a `train` config section: batch size (train.prefix_batch_size, else
    train.batch_size) and whether to torch.compile it (train.compile_prefix); configs saved before these keys
    existed get the old behaviour."""
    return {"batch_size": int(train.get("prefix_batch_size") or train["batch_size"]),
            "compile": bool(train.get("compile_prefix", False))}


class PrefixRunner:
    """The frozen prefix called batch by batch; with `compile`, torch.compile'd for one static batch shape.

    The ragged last batch is padded to `batch_size` (and the padding's outputs dropped) rather than compiled a
    second time. If compiling fails (no C++ compiler on a CPU, an unsupported op), the eager prefix, which
    computes the same function, takes over with a warning.
    """

    def __init__(self, prefix: nn.Module, batch_size: int, compile: bool):
        self.prefix, self.batch_size = prefix, int(batch_size)
        self.compiled = torch.compile(prefix, dynamic=False) if compile else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.compiled is None:
            return self.prefix(x)
        n = len(x)
        if n < self.batch_size:
            pad = x[-1:].expand(self.batch_size - n, *x.shape[1:])
            x = torch.cat([x, pad]).contiguous(memory_format=torch.channels_last)
        try:
            return self.compiled(x)[:n]
        except Exception as e:  # torch.compile raises many types (BackendCompilerFailed, InvalidCxxCompiler, ...)
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            log.warning("train.compile_prefix: torch.compile failed (%s: %s); running the frozen prefix eagerly",
                        type(e).__name__, first[:200])
            self.compiled = None
            return self.prefix(x[:n])


def prefix_activations(split: BodySplit, cache: ImageCache, views: Sequence[str], spec: dict, store: ActivationStore,
                       batch_size: int, device: torch.device,
                       on_batch: Callable[[int], None] | None = None, compile: bool = False) -> dict[str, np.ndarray]:
    """{view: (len(cache), C, H, W) float16 activations} of the frozen prefix, computed once per view.

    'orig' and 'flip' share one decoding pass; 'aug<i>' is TTA's seeded augmented view i (models.tta), drawn
    over this cache's images in order. A view already stored (for these images, or for a larger image cache
    they are rows of) is read from disk. on_batch(n) is called after each prefix forward of n images.
    `compile`: the prefix runs torch.compile'd (PrefixRunner); the activations match the eager ones to float
    rounding, so they share the cache.
    """
    found = {v: store.lookup(cache, spec, v) for v in views}
    todo = [v for v in views if found[v] is None]
    if todo:
        where = "the whole frozen body" if split.n_stages == 0 else f"cut before stage {spec['cut']}"
        log.info("activation cache: %d of %d views of %d images to compute (%s, %s, %d px) -> %s",
                 len(todo), len(views), len(cache), spec["backbone"], where, spec["size"], store.root)
        prefix = PrefixRunner(split.prefix.eval().to(device).to(memory_format=torch.channels_last), batch_size,
                              compile)
        plain = [v for v in todo if v in ("orig", "flip")]
        bad = [v for v in todo if v not in plain and not (v.startswith("aug") and v[3:].isdigit())]
        if bad:
            raise ConfigError(f"unknown activation view {bad[0]!r} (orig, flip or aug<i>)")
        # Minutes on a CPU: a log line every 30 s (a bar on a terminal); on_batch sees the same counts.
        with Progress(len(todo) * len(cache), "activation cache", unit="img") as bar:
            def count(n: int) -> None:
                bar.update(n)
                if on_batch is not None:
                    on_batch(n)

            if plain:
                _run(prefix, cache, spec, None, batch_size, device, {v: store.writer(cache, spec, v) for v in plain},
                     count)
            for v in todo:
                if v in plain:
                    continue
                with seeded(view_seed(int(spec["seed"]), int(v[3:])), device):
                    _run(prefix, cache, spec, spec["augment"], batch_size, device, {v: store.writer(cache, spec, v)},
                         count)
        found.update({v: store.lookup(cache, spec, v) for v in todo})
    return {v: found[v] for v in views}


def _run(prefix: PrefixRunner, cache: ImageCache, spec: dict, aug: dict | None, batch_size: int,
         device: torch.device, writers: dict[str, ActivationWriter], on_batch) -> None:
    """One pass over the cache's images, each batch written into every view's memmap as it comes."""
    dl = image_loader(CachedImage(cache), range(len(cache)), spec["size"], spec["mean"], spec["std"], aug,
                      batch_size, device)
    start = 0
    try:
        with torch.inference_mode():
            for b in dl:
                x = (b[0] if isinstance(b, tuple | list) else b).as_subclass(torch.Tensor).to(device)
                x = x.contiguous(memory_format=torch.channels_last)
                for view, w in writers.items():
                    out = prefix(x.flip(-1) if view == "flip" else x)
                    if on_batch is not None:
                        on_batch(len(x))
                    w.write(start, out.half().cpu().numpy())
                start += len(x)
        for view, w in writers.items():
            w.commit()
            log.info("activation cache: view %s done (%d images)", view, start)
    finally:
        for w in writers.values():
            w.discard()  # no-op after commit; removes a half-written file otherwise
