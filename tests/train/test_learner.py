"""Training-loop details on the CPU: channels_last batches, torch.compile keeping the state_dict keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.training import tiny_learner


def test_training_feeds_channels_last_batches_on_the_cpu_too(tmp_path):
    """train.channels_last holds on every device (oneDNN trains faster in it); false turns it off."""
    from fastai.callback.core import Callback

    class Layout(Callback):
        order = 50

        def before_batch(self):
            self.seen = self.xb[0].is_contiguous(memory_format=torch.channels_last)

    for flag in (True, False):
        learn, _ = tiny_learner(tmp_path / str(flag), train_over={"channels_last": flag})
        probe = Layout()
        learn.fit(1, 1e-3, cbs=[probe])
        assert probe.seen is flag
        conv = next(m for m in learn.model.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) is flag


@pytest.mark.slow
def test_train_compile_trains_and_keeps_the_state_dict_keys(tmp_path):
    """train.compile compiles in place: same state_dict keys (model.pth loads into a plain model), same loss."""
    plain, _ = tiny_learner(tmp_path / "plain")
    compiled, _ = tiny_learner(tmp_path / "compiled", train_over={"compile": True})
    assert list(compiled.model.state_dict()) == list(plain.model.state_dict())
    compiled.fit(1, 1e-3)
    losses = compiled.recorder.values[-1]
    assert np.isfinite(losses).all()
    plain.model.load_state_dict(compiled.model.state_dict())  # no _orig_mod. prefix to strip
