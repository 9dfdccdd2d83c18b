"""train.mixup / train.cutmix: fastai's MixUp and CutMix callbacks on the project's soft-target Learner."""

from __future__ import annotations

import pytest
import torch
from fastai.callback.core import Callback
from fastai.callback.mixup import CutMix, MixUp
from tests.helpers.training import tiny_learner

from fashiontag.core.config import load_config
from fashiontag.core.errors import ConfigError
from fashiontag.train.feature_cache import check_feature_cache_config
from fashiontag.train.learner import mixing_callback

BASE = {"mixup": 0.0, "cutmix": 0.0}


class SeeBatch(Callback):
    """Records the first training batch as the model will see it (after the mixing callback, order 0)."""

    order = 1

    def before_batch(self):
        if self.training and not hasattr(self, "seen"):
            self.seen = (self.learn.xb[0].detach().clone(), self.learn.yb[0].detach().clone())


def test_mixing_callback_choice():
    assert mixing_callback(BASE) is None
    assert isinstance(mixing_callback({**BASE, "mixup": 0.4}), MixUp)
    assert isinstance(mixing_callback({**BASE, "cutmix": 1.0}), CutMix)
    with pytest.raises(ConfigError, match="one of them"):
        mixing_callback({"mixup": 0.4, "cutmix": 1.0})


def test_cutmix_refused_on_cached_features_before_caching():
    train = load_config(None, ["train.feature_cache=true", "train.unfrozen_epochs=0", "train.stages=[32]"])["train"]
    check_feature_cache_config(train)  # mixup or nothing: fine
    check_feature_cache_config({**train, "mixup": 0.4})
    with pytest.raises(ConfigError, match="pooled vectors use train.mixup"):
        check_feature_cache_config({**train, "cutmix": 1.0})


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixing_blends_targets_and_trains(tmp_path, kind):
    torch.manual_seed(0)
    learn, _ = tiny_learner(tmp_path, n_train=8, bs=8, train_over={kind: 1.0})
    assert sum(isinstance(cb, MixUp if kind == "mixup" else CutMix) for cb in learn.cbs) == 1
    see = SeeBatch()
    learn.fit_one_cycle(1, 1e-3, cbs=[see])
    x, y = see.seen
    # Soft targets still sum to 1 per row, and some rows now mix two labels (no longer one-hot).
    assert torch.allclose(y.sum(dim=1), torch.ones(len(y)))
    assert ((y > 0.01) & (y < 0.99)).any()
    assert x.shape[0] == 8 and torch.isfinite(x).all()
    # The epoch finished with finite training and validation losses.
    assert learn.recorder.values and all(torch.isfinite(torch.tensor(v)).all() for v in learn.recorder.values)
