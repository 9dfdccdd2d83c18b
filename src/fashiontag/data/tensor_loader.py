"""Batches indexed straight out of in-memory images (data/tensor_images.py), for a fastai Learner and for
prediction: the `data.in_memory` fast path.

`TensorLoader` has what fastai's Learner, its callbacks and the project's resume code use of a DataLoader
(len, iteration, `bs`, `n`, `device`, `to`, `new`, `one_batch`, `dataset`, `rng`), so LR finder, one-cycle,
checkpoints and get_preds work unchanged. An epoch draws one permutation (from the loader's own `rng`, as
fastai's loaders shuffle, so a resumed run draws the same order), then each batch is an index_select of
uint8 rows and targets on the device plus one BatchTransform call; there is no per-item Python and no
fastai Pipeline or TensorImage in the loop.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from fastai.data.core import DataLoaders

from fashiontag.core.errors import ConfigError
from fashiontag.core.skips import SkipReport
from fashiontag.data.cache import ImageCache, build_cache
from fashiontag.data.loaders import fold_dataloaders, view_loaders
from fashiontag.data.tensor_augment import BatchTransform
from fashiontag.data.tensor_images import TensorImages, from_cache


class TensorLoader:
    """Batches `(x, y)` (or `(x,)` without targets) of `rows` of `images`; `x` from `transform`."""

    n_inp = 1

    def __init__(self, images: TensorImages, rows: Sequence[int], targets: torch.Tensor | None, bs: int,
                 transform: BatchTransform, shuffle: bool = False, drop_last: bool = False):
        self.images, self.transform = images, transform
        self.rows = torch.as_tensor(np.asarray(rows, dtype=np.int64), device=images.device)
        self.targets = None if targets is None else targets.to(images.device)
        self.bs, self.shuffle, self.drop_last = int(bs), shuffle, drop_last
        self.rng = random.Random(random.randint(0, 2**32 - 1))  # as fastai's DataLoader: a stream of its own
        self.dataset = self.rows  # len(dl.dataset) is the number of items, as for fastai's loaders

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def device(self) -> torch.device:
        return self.transform.device

    def __len__(self) -> int:
        return self.n // self.bs if self.drop_last else -(-self.n // self.bs)

    def order(self) -> torch.Tensor:
        """This epoch's row order: a permutation seeded from `rng` when shuffling."""
        if not self.shuffle:
            return self.rows
        gen = torch.Generator(device="cpu").manual_seed(self.rng.getrandbits(63))
        perm = torch.randperm(self.n, generator=gen).to(self.rows.device)
        return self.rows[perm]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        rows = self.order()
        for i in range(len(self)):
            idx = rows[i * self.bs:(i + 1) * self.bs]
            x = self.transform(self.images.pixels.index_select(0, idx))
            if self.targets is None:
                yield (x,)
            else:
                yield x, self.targets.index_select(0, idx).to(self.device, non_blocking=True)

    def one_batch(self) -> tuple[torch.Tensor, ...]:
        return next(iter(self))

    def to(self, device) -> TensorLoader:
        device = torch.device(device)
        if device != self.device:
            self.images = from_cache(self.images, device)
            self.rows = self.rows.to(self.images.device)
            self.targets = None if self.targets is None else self.targets.to(self.images.device)
            self.transform = self.transform.to(device)
        return self

    def new(self, shuffle: bool | None = None, drop_last: bool | None = None, **_) -> TensorLoader:
        """A loader over the same rows (fastai's get_preds asks for one without shuffling)."""
        dl = TensorLoader.__new__(TensorLoader)
        dl.__dict__.update(self.__dict__)
        dl.shuffle = self.shuffle if shuffle is None else shuffle
        dl.drop_last = self.drop_last if drop_last is None else drop_last
        dl.rng = random.Random(self.rng.getrandbits(32))
        return dl


def check_single_process() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("data.in_memory trains in one process; set data.in_memory=false for DDP (torchrun / "
                          "accelerate launch), or train on one device")


def tensor_dataloaders(cache: ImageCache | TensorImages, targets: np.ndarray, train_rows: Sequence[int],
                       valid_rows: Sequence[int], size: int, mean: Sequence[float], std: Sequence[float],
                       aug: dict, batch_size: int, device: torch.device, num_workers: int = 0) -> DataLoaders:
    """The in-memory counterpart of `data.loaders.fold_dataloaders` (same arguments; num_workers unused):
    train (augmented, shuffled, ragged last batch dropped when there is more than one batch) and valid
    (plain, in `valid_rows` order)."""
    check_single_process()
    images = from_cache(cache, device)
    target_t = torch.as_tensor(np.asarray(targets, dtype=np.float32))
    train = TensorLoader(images, train_rows, target_t, batch_size, BatchTransform(size, mean, std, aug, device),
                         shuffle=True, drop_last=len(train_rows) > batch_size)
    valid = TensorLoader(images, valid_rows, target_t, batch_size, BatchTransform(size, mean, std, None, device))
    return DataLoaders(train, valid, device=device)


def tensor_view_loaders(paths: list[str], pre: dict, cfg: dict, device: torch.device, skips: SkipReport,
                        crops=None) -> tuple[Callable[[bool], TensorLoader], list[int]]:
    """The in-memory counterpart of `data.loaders.view_loaders`: make_dl(augment) over `paths` (decoded once
    into the prediction image cache, as test_dataloader does) and the kept indices."""
    cache = build_cache(paths, int(pre["cache_size"] or pre["size"]), cfg["cache"]["dir"], crops, name="predict",
                        resize=pre["resize"], pad_value=pre["pad_value"],
                        workers=int(cfg["cache"]["workers"] or max(1, int(cfg["train"]["num_workers"]))), skips=skips)
    kept = [int(i) for i in np.flatnonzero(cache.ok)]
    images = from_cache(cache, device)
    bs = int(cfg["train"]["batch_size"])
    loaders = {augment: TensorLoader(images, kept, None, bs, BatchTransform(
        int(pre["size"]), pre["mean"], pre["std"], pre["augment"] if augment else None, device))
        for augment in (False, True)}
    return loaders.__getitem__, kept


def fold_loader_factory(cfg: dict) -> Callable[..., DataLoaders]:
    """What builds a fold's DataLoaders: tensor_dataloaders with data.in_memory, else the file pipeline's
    fold_dataloaders (which has no shift or erasing: refused there rather than silently ignored)."""
    if cfg["data"]["in_memory"]:
        return tensor_dataloaders
    only = [k for k in ("shift", "erase") if cfg["augment"][k]]
    if only:
        raise ConfigError(f"augment.{only[0]}={cfg['augment'][only[0]]} needs data.in_memory=true (the fastai file "
                          "pipeline has no shift or random erasing); set it to 0 or data.in_memory=true")
    return fold_dataloaders


def view_loader_factory(cfg: dict) -> Callable[..., tuple]:
    """What builds prediction views: tensor_view_loaders with data.in_memory, else view_loaders."""
    return tensor_view_loaders if cfg["data"]["in_memory"] else view_loaders
