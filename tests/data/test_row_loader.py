"""The batched loader over cached rows (features or activations): the rows asked for, one view per sample
(any view when training, view 0 when validating), in order when not shuffled, and fastai's get_preds on it."""

from __future__ import annotations

import random

import numpy as np
import torch

from fashiontag.data.row_loader import CachedRows, RowsDL, row_dataloaders


def _views(n: int = 20, n_views: int = 3) -> list[np.ndarray]:
    # Value = 1000 * view + row, so a batch tells which view and row each sample came from.
    return [np.stack([np.full((2, 3), 1000 * v + r, dtype=np.float16) for r in range(n)]) for v in range(n_views)]


def _targets(n: int = 20) -> np.ndarray:
    return np.eye(4, dtype=np.float32)[np.arange(n) % 4]


def test_valid_batches_are_view_0_of_the_rows_in_order():
    rows = [7, 3, 11, 0, 19]
    _, valid = row_dataloaders(_views(), _targets(), list(range(10)), rows, batch_size=2, device=torch.device("cpu"))
    xs, ys = zip(*list(valid), strict=True)
    assert [len(x) for x in xs] == [2, 2, 1]
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.dtype == torch.float32 and x.shape == (5, 2, 3)
    assert x[:, 0, 0].tolist() == rows  # view 0, row r -> r
    np.testing.assert_array_equal(y.numpy(), _targets()[rows])


def test_training_batches_draw_one_view_per_sample_and_cover_every_row():
    random.seed(0)
    train_rows = list(range(2, 18))
    train, _ = row_dataloaders(_views(), _targets(), train_rows, [0], batch_size=5, device=torch.device("cpu"))
    seen_rows, seen_views = [], set()
    for _ in range(3):
        xs = [x for x, _ in train]
        assert [len(x) for x in xs] == [5, 5, 5]  # 16 rows: the ragged last batch is dropped
        values = torch.cat(xs)[:, 0, 0].long()
        assert (torch.cat(xs) == torch.cat(xs)[:, :1, :1]).all()  # each sample is one whole row of one view
        seen_rows += (values % 1000).tolist()
        seen_views |= set((values // 1000).tolist())
    assert set(seen_rows) <= set(train_rows) and len(set(seen_rows)) >= 15
    assert seen_views == {0, 1, 2}


def test_a_row_and_its_target_stay_together_when_shuffled():
    ds = CachedRows(_views(), _targets(), list(range(20)), random_view=True)
    dl = RowsDL(ds, bs=4, shuffle=True, drop_last=False)
    for x, y in dl:
        rows = (x[:, 0, 0].long() % 1000).numpy()
        np.testing.assert_array_equal(y.numpy(), _targets()[rows])


def test_fastai_get_preds_runs_on_the_loader():
    from fastai.learner import Learner

    dls = row_dataloaders(_views(), _targets(), list(range(12)), list(range(12, 20)), batch_size=4,
                          device=torch.device("cpu"))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 4))
    learn = Learner(dls, model, loss_func=torch.nn.CrossEntropyLoss())
    preds, targs = learn.get_preds(dl=dls.valid)
    assert preds.shape == (8, 4)
    np.testing.assert_array_equal(targs.numpy(), _targets()[12:20])
