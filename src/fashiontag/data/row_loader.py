"""A fastai DataLoader over rows of cached arrays (pooled features or body activations), a batch at a time.

Training on cached features or activations reads each epoch's photos from a few arrays held in memory or
memory-mapped. fastai's default loader fetches and collates one item at a time (a Python call, a copy and a
tensor per photo); here `create_item` passes the sample index through and each batch is one fancy-index
gather per view, and one class serves both the pooled-feature and the activation caches.

Each training photo is shown as one of its views per epoch, drawn with python's `random` in sample order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader


class CachedRows:
    """Rows `rows` of `views` (each (N, ...) and indexable by an int array) with their targets, as one dataset.

    `random_view`: every sample is shown as one view chosen at random (training); otherwise view 0.
    """

    def __init__(self, views: Sequence, targets: np.ndarray, rows, random_view: bool):
        self.views, self.targets = list(views), np.asarray(targets)
        self.rows, self.random_view = np.asarray(rows, dtype=np.int64), random_view

    def __len__(self) -> int:
        return len(self.rows)

    def gather(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(float32 inputs, float32 targets) of samples `idx`, one fancy-index read per view."""
        rows = self.rows[np.asarray(idx, dtype=np.int64)]
        n_views = len(self.views)
        pick = np.array([random.randrange(n_views) for _ in idx] if self.random_view else [0] * len(idx))
        x = np.empty((len(rows), *self.views[0].shape[1:]), dtype=np.float32)
        for v in np.unique(pick):
            where = pick == v
            x[where] = np.asarray(self.views[v][rows[where]], dtype=np.float32)
        return torch.from_numpy(x), torch.from_numpy(self.targets[rows].astype(np.float32))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.gather([i])
        return x[0], y[0]


class RowsDL(DataLoader):
    """fastai DataLoader over a `CachedRows`: sample indices pass through, each batch is one `gather`."""

    def create_item(self, s: int) -> int:
        return s

    def do_batch(self, b: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.dataset.gather(b)


def row_dataloaders(views: Sequence, targets: np.ndarray, train_rows, valid_rows, batch_size: int,
                    device: torch.device) -> DataLoaders:
    """Train (shuffled, a random view per photo per epoch) and valid (view 0, in `valid_rows` order) loaders."""
    # Drop the ragged last training batch only when there is more than one (BatchNorm fails on a batch of 1).
    train = RowsDL(CachedRows(views, targets, train_rows, True), bs=batch_size, shuffle=True,
                   drop_last=len(train_rows) > batch_size, device=device)
    valid = RowsDL(CachedRows(views, targets, valid_rows, False), bs=batch_size, shuffle=False, drop_last=False,
                   device=device)
    return DataLoaders(train, valid, device=device)
