"""data/dataloader.py: worker processes are forked once per loader, not once per epoch, and the shuffle
still changes every epoch (the same orders fastai draws without workers)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch
from fastai.data.core import TfmdDL

from fashiontag.data.dataloader import DeviceDL, release_workers


class Rows(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 24

    def __getitem__(self, i: int) -> tuple[torch.Tensor]:
        return (torch.tensor(i),)


class RecordInit:
    """fastai's `wif` hook runs in each worker when it starts: one file per worker process."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __call__(self) -> None:
        (self.folder / f"{os.getpid()}.{random.random()}").touch()


def _epochs(cls, tmp_path: Path, workers: int, n_epochs: int = 3, **kwargs) -> tuple[list[list[int]], int]:
    inits = tmp_path / f"{cls.__name__}_{workers}"
    inits.mkdir()
    random.seed(0)  # the loader's own random stream starts from python's
    dl = cls(Rows(), bs=4, shuffle=True, num_workers=workers, wif=RecordInit(inits), **kwargs)
    orders = [[int(i) for (b,) in dl for i in b] for _ in range(n_epochs)]
    release_workers(dl)
    return orders, len(list(inits.iterdir()))


def test_workers_persist_and_each_epoch_gets_a_new_shuffle(tmp_path):
    orders, inits = _epochs(DeviceDL, tmp_path, workers=2)
    assert inits == 2, "two workers for three epochs"
    assert all(sorted(o) == list(range(24)) for o in orders)
    assert len({tuple(o) for o in orders}) == 3, "every epoch shuffles anew"
    # Exactly the batches fastai's loader yields without workers from the same random stream.
    single, _ = _epochs(DeviceDL, tmp_path, workers=0)
    assert orders == single


def test_stock_fastai_forks_workers_every_epoch(tmp_path):
    """What the persistent loader avoids (and what makes the first test meaningful)."""
    orders, inits = _epochs(TfmdDL, tmp_path, workers=2)
    assert inits == 2 * 3
    single, _ = _epochs(TfmdDL, tmp_path, workers=0)
    assert orders == single


def test_an_epoch_abandoned_half_way_leaves_the_next_one_whole(tmp_path):
    random.seed(0)
    dl = DeviceDL(Rows(), bs=4, shuffle=True, num_workers=2)
    for i, _ in enumerate(dl):  # the LR finder stops mid-epoch like this
        if i == 1:
            break
    orders = [[int(i) for (b,) in dl for i in b] for _ in range(2)]
    release_workers(dl)
    assert all(sorted(o) == list(range(24)) for o in orders) and orders[0] != orders[1]


@pytest.mark.parametrize("workers", [0, 2])
def test_one_batch_and_new_loaders_keep_working(tmp_path, workers):
    dl = DeviceDL(Rows(), bs=4, shuffle=False, num_workers=workers)
    assert [int(i) for i in dl.one_batch()[0]] == [0, 1, 2, 3]
    valid = dl.new(shuffle=False)
    assert isinstance(valid, DeviceDL) and [int(i) for (b,) in valid for i in b] == list(range(24))
    release_workers(valid)
    release_workers(dl)
