"""fastai Datasets/DataLoaders over the uint8 image cache, the device-side batch transforms, soft targets.

Items are uint8 CHW `TensorImage`s (from the cache, or decoded from files for prediction); everything per
epoch happens batch-wise on the device in `after_batch`: IntToFloatTensor -> ResizeBatch (the
progressive-resizing stage size, antialiased) -> flip/rotate/zoom (one composed affine, or a
RandomResizedCrop) -> contrast/brightness -> Normalize. Random transforms are redrawn for every batch,
so every epoch sees new ones. Targets are probability vectors (one-hot, or soft for 'm' labels).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fastai.data.core import DataLoaders, Datasets, TfmdDL
from fastai.data.transforms import IntToFloatTensor, Normalize
from fastai.torch_core import TensorBase, TensorImage
from fastai.vision import augment as fastai_augment
from fastai.vision.augment import (
    Brightness,
    Contrast,
    Flip,
    RandomResizedCropGPU,
    Rotate,
    Zoom,
    setup_aug_tfms,
)
from fasttransform import Transform

from fashiontag.core.devices import resolve_device
from fashiontag.core.skips import SkipReport
from fashiontag.data.cache import ImageCache, build_cache, fit_image
from fashiontag.data.dataloader import DeviceDL
from fashiontag.data.images import open_rgb

log = logging.getLogger(__name__)


def soft_targets(labels: Sequence[str], maybe_weight: float = 0.0) -> np.ndarray:
    """Label strings ('nnynmn') -> (N, n) float32 targets: y gets 1-w, the 'm' values share w.

    Rows without 'm' (or w == 0) are one-hot. w must stay below 0.5 so the 'y' value remains the argmax
    (accuracy and the confusion matrix read the target's argmax).
    """
    if not 0.0 <= maybe_weight < 0.5:
        raise ValueError(f"train.maybe_weight must be in [0, 0.5), got {maybe_weight}")
    n = len(labels[0]) if len(labels) else 0
    out = np.zeros((len(labels), n), dtype=np.float32)
    for i, label in enumerate(labels):
        y = label.index("y")
        maybes = [j for j, c in enumerate(label) if c == "m"]
        if maybes and maybe_weight > 0:
            out[i, y] = 1.0 - maybe_weight
            out[i, maybes] = maybe_weight / len(maybes)
        else:
            out[i, y] = 1.0
    return out


class CachedImage:
    """Item transform: cache row -> uint8 CHW TensorImage (the memmap row, copied)."""

    def __init__(self, cache: ImageCache):
        self.cache = cache

    def __call__(self, row) -> TensorImage:
        return TensorImage(torch.from_numpy(np.array(self.cache.row(int(row)))).permute(2, 0, 1))


class FileImage:
    """Item transform for prediction without a cache: index i -> paths[i] (cropped to crops[i]), letterboxed."""

    def __init__(self, paths: Sequence, crops: Sequence | None, size: int, resize: str, pad_value):
        self.paths, self.crops = [str(p) for p in paths], crops
        self.size, self.resize, self.pad_value = size, resize, pad_value

    def __call__(self, i) -> TensorImage:
        i = int(i)
        crop = None if self.crops is None else self.crops[i]
        arr = fit_image(open_rgb(self.paths[i]), self.size, self.resize, self.pad_value, crop)
        return TensorImage(torch.from_numpy(arr).permute(2, 0, 1))


class TargetRow:
    """Item transform: cache row -> its target probability vector."""

    def __init__(self, targets: np.ndarray):
        self.targets = torch.from_numpy(np.asarray(targets, dtype=np.float32))

    def __call__(self, row) -> TensorBase:
        return TensorBase(self.targets[int(row)])


class ResizeBatch(Transform):
    """Resize a float image batch to `size` x `size` on its device (antialiased when shrinking).

    Runs after IntToFloatTensor (order 10) and before the affine augmentations (order 30): the cache
    holds the largest stage size, smaller progressive-resizing stages shrink batch-wise here.
    """

    order = 25

    def __init__(self, size: int, upscale: bool = True):
        super().__init__()
        self.size, self.upscale = int(size), upscale

    def encodes(self, x: TensorImage) -> TensorImage:
        if x.shape[-2:] == (self.size, self.size) or (not self.upscale and x.shape[-1] <= self.size):
            return x
        shrink = x.shape[-1] > self.size
        return TensorImage(F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                         align_corners=False, antialias=shrink))


def _grid_sample(x: torch.Tensor, coords: torch.Tensor, mode: str = "bilinear", padding_mode: str = "reflection",
                 align_corners=None) -> torch.Tensor:
    """fastai's affine resampling, minus its per-batch host-device synchronisation.

    fastai reads the zoom factor back from the device (`.item()`) on every batch, although it only matters
    when the input is more than twice the output size, when it shrinks the input first. ResizeBatch already
    brings batches to the stage size, so here the read happens only in that case: same pixels, no stall
    waiting for the previous training step on every batch.
    """
    if mode == "bilinear":
        d = min(x.shape[-2] / coords.shape[-2], x.shape[-1] / coords.shape[-1]) / 2
        if d > 1 and d > 2 / (coords.max() - coords.min()).item():
            x = F.interpolate(x, scale_factor=1 / d, mode="area", recompute_scale_factor=True)
    return F.grid_sample(x, coords, mode=mode, padding_mode=padding_mode, align_corners=align_corners)


fastai_augment._grid_sample = _grid_sample  # fastai's affine_coord looks it up in its module at every call


def augment_tfms(aug: dict, size: int) -> list:
    """DESIGN.md §3 augmentation as fastai GPU batch transforms (affines composed into one resample)."""
    tfms: list = []
    p_affine = float(aug["p_affine"])
    if aug["random_resized_crop"]:
        lo, hi = aug["random_resized_crop"]
        tfms.append(RandomResizedCropGPU(size, min_scale=float(lo), max_scale=float(hi)))
    if aug["flip"]:
        tfms.append(Flip(p=0.5))
    if aug["rotate"]:
        tfms.append(Rotate(max_deg=float(aug["rotate"]), p=p_affine))
    zoom = aug["zoom"]
    if float(zoom[1]) > 1.0 or float(zoom[0]) < 1.0:
        tfms.append(Zoom(min_zoom=float(zoom[0]), max_zoom=float(zoom[1]), p=p_affine))
    p_light = float(aug["p_lighting"])
    if aug["contrast"]:
        tfms.append(Contrast(max_lighting=float(aug["contrast"]), p=p_light))
    if aug["brightness"]:
        tfms.append(Brightness(max_lighting=float(aug["brightness"]), p=p_light))
    return setup_aug_tfms(tfms)


def batch_tfms(size: int, mean: Sequence[float], std: Sequence[float], aug: dict | None) -> list:
    if aug is not None and aug["random_resized_crop"]:
        # The crop itself outputs `size`; it crops from the cached pixels, shrunk only as far as a crop of
        # the smallest scale still covers `size` (so the final resample barely shrinks: little aliasing).
        lo = float(aug["random_resized_crop"][0])
        resize = ResizeBatch(int(round(size / max(lo, 1e-3) ** 0.5)), upscale=False)
    else:
        resize = ResizeBatch(size)
    tfms = [IntToFloatTensor(), resize]
    if aug is not None:
        tfms += augment_tfms(aug, size)
    return tfms + [Normalize.from_stats(list(mean), list(std))]


def fold_dataloaders(
    cache: ImageCache,
    targets: np.ndarray,
    train_rows: Sequence[int],
    valid_rows: Sequence[int],
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    aug: dict,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
) -> DataLoaders:
    """Train (augmented, shuffled) and valid (plain, in `valid_rows` order) DataLoaders at `size`."""
    rows = list(map(int, train_rows)) + list(map(int, valid_rows))
    splits = (list(range(len(train_rows))), list(range(len(train_rows), len(rows))))
    dsets = Datasets(rows, tfms=[[CachedImage(cache)], [TargetRow(targets)]], splits=splits)
    # Drop the ragged last batch when it would be tiny (BatchNorm fails on a batch of 1); keep it when
    # the whole training set fits in one batch.
    drop_last = len(train_rows) > batch_size
    cuda = device.type == "cuda"
    return dsets.dataloaders(
        bs=batch_size, shuffle=True, drop_last=drop_last, device=device, dl_type=DeviceDL,
        after_batch=batch_tfms(size, mean, std, aug), num_workers=num_workers, pin_memory=cuda,
        val_after_batch=batch_tfms(size, mean, std, None),
    )


def test_dataloader(
    paths: Sequence[str | Path],
    preprocess: dict,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    augment: bool = False,
    *,
    crops: Sequence | None = None,
    cache_dir: str | Path | None = None,
    num_workers: int = 0,
    skips: SkipReport | None = None,
) -> TfmdDL:
    """A DataLoader of image batches `(x,)` in `paths` order, preprocessed as the fold was trained.

    preprocess: a fold's preprocess.json (see `models.build.load_fold_model`): size, resize, pad_value,
    mean, std, and `augment` (the training augmentation, used when augment=True, e.g. for TTA: every
    pass over the loader draws new random transforms).
    cache_dir: decode the images once into an image cache there (recommended when the same images are
    predicted by several folds or TTA passes); unreadable images are then skipped into `skips` when
    `skips.skip` (their indices are missing from `dl.kept`), else they raise DataError. Without a
    cache, images are decoded in the loader (num_workers=0 keeps DataError messages clean).
    `dl.kept` lists the indices of `paths` that the loader yields, in order.
    """
    size = int(preprocess["size"])
    resize = preprocess.get("resize", "pad")
    pad_value = preprocess.get("pad_value", [124, 116, 104])
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    if cache_dir is not None:
        cache = build_cache(paths, int(preprocess.get("cache_size") or size), cache_dir, crops,
                            name="predict", resize=resize, pad_value=pad_value,
                            workers=max(1, num_workers), skips=skips)
        kept = [int(i) for i in np.flatnonzero(cache.ok)]
        item_tfm, items = CachedImage(cache), kept
    else:
        kept = list(range(len(paths)))
        item_tfm, items = FileImage(paths, crops, size, resize, pad_value), kept
    aug = preprocess["augment"] if augment else None
    dl = image_loader(item_tfm, items, size, preprocess["mean"], preprocess["std"], aug, batch_size, device,
                      num_workers)
    dl.kept = kept
    return dl


def image_loader(item_tfm, items: Sequence, size: int, mean: Sequence[float], std: Sequence[float],
                 aug: dict | None, batch_size: int, device: torch.device, num_workers: int = 0) -> TfmdDL:
    """Batches `(x,)` of `item_tfm(item)` in `items` order, batch-transformed on the device; `aug` (or None)
    is the training augmentation, applied in train mode so every pass draws new transforms."""
    # split_idx 0 makes fastai apply the training-only random transforms; 1 disables them.
    dset = Datasets(list(items), tfms=[[item_tfm]], split_idx=0 if aug is not None else 1)
    return DeviceDL(dset, bs=batch_size, shuffle=False, drop_last=False, device=device,
                    after_batch=batch_tfms(size, mean, std, aug), num_workers=num_workers,
                    pin_memory=device.type == "cuda")


test_dataloader.__test__ = False  # not a pytest test, whatever its name says, when a test imports it


def view_loaders(paths: list[str], pre: dict, cfg: dict, device: torch.device, skips: SkipReport, crops=None):
    """make_dl(augment) for `paths` (decoded once into the image cache) and the kept indices."""
    kwargs = dict(batch_size=int(cfg["train"]["batch_size"]), device=device, cache_dir=cfg["cache"]["dir"],
                  num_workers=int(cfg["train"]["num_workers"]), crops=crops)
    # TTA replays the fold's own augmentation (preprocess.json); a setting added since the fold was trained
    # takes the run config's value (over base.yaml), never one made up here.
    pre = {**pre, "augment": {**cfg["augment"], **pre["augment"]}}
    built = {False: test_dataloader(paths, pre, augment=False, skips=skips, **kwargs)}

    def make_dl(augment: bool):
        if augment not in built:
            # Built only when a plan has augmented views; it reuses the image cache, whose bad images
            # were already reported by the plain loader.
            built[augment] = test_dataloader(paths, pre, augment=True, skips=SkipReport(skip=True), **kwargs)
        return built[augment]

    return make_dl, list(built[False].kept)
