"""train/recording.py: the device-side Recorder records what fastai's own Recorder records, and the training
loop reads no tensor value back per batch (on a GPU each read would wait for the batch's step)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from fastai.learner import Recorder
from fastai.torch_core import set_seed

from fashiontag.train.learner import soft_accuracy
from fashiontag.train.recording import DeviceRecorder
from helpers.training import tiny_learner

READS = ("item", "cpu", "tolist", "numpy", "__float__", "__int__", "__bool__", "__format__", "__index__")
# fastai's schedules interpolate in small tensors they build on the host (never the device's values).
HOST_ONLY = str(Path("fastai") / "callback" / "schedule.py")


def _fit(tmp_path, stock: bool, n_train: int = 16, epochs: int = 2):
    set_seed(0)
    learn, _ = tiny_learner(tmp_path, n_train=n_train)
    if stock:  # fastai's own Recorder and AvgMetric, as Learner makes them
        learn.remove_cb(learn.recorder)
        learn.add_cb(Recorder())
        learn.metrics = [soft_accuracy]
    set_seed(1)
    learn.fit_one_cycle(epochs, 1e-3)
    return learn


def test_recorded_values_are_fastais(tmp_path):
    ours, stock = _fit(tmp_path / "ours", stock=False), _fit(tmp_path / "stock", stock=True)
    assert isinstance(ours.recorder, DeviceRecorder) and type(stock.recorder) is Recorder
    assert ours.recorder.metric_names == stock.recorder.metric_names
    np.testing.assert_allclose(np.array(ours.recorder.values, float), np.array(stock.recorder.values, float),
                               rtol=1e-6)
    assert len(ours.recorder.losses) == len(stock.recorder.losses) == 2 * 4
    np.testing.assert_allclose([float(v) for v in ours.recorder.losses],
                               [float(v) for v in stock.recorder.losses], rtol=1e-6)
    assert ours.recorder.lrs == stock.recorder.lrs and ours.recorder.iters == stock.recorder.iters
    assert all(v.device.type == "cpu" and v.ndim == 0 for v in ours.recorder.losses)
    assert float(ours.smooth_loss) == float(ours.recorder.losses[-1])


def test_no_value_is_read_back_per_batch(tmp_path, monkeypatch):
    """Reads of tensor values (item, cpu, float(), int(), f-strings...) during a fit do not grow with the number
    of batches: 2 and 6 training batches per epoch cost the same reads (once per epoch). The loop includes the
    loader's augmentation on the device (fastai's affine resampling read its zoom back every batch)."""
    counts: Counter = Counter()
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            if not sys._getframe(1).f_code.co_filename.endswith(HOST_ONLY):
                counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    per_size = {}
    for n_train in (8, 24):
        counts.clear()
        _fit(tmp_path / str(n_train), stock=False, n_train=n_train, epochs=1)
        per_size[n_train] = dict(counts)
    assert per_size[8] == per_size[24], per_size

    # The check can fail: fastai's own Recorder copies each batch's loss to the CPU.
    counts.clear()
    _fit(tmp_path / "stock8", stock=True, n_train=8, epochs=1)
    few = counts["cpu"]
    counts.clear()
    _fit(tmp_path / "stock24", stock=True, n_train=24, epochs=1)
    assert counts["cpu"] > few


def test_the_model_gets_plain_tensors(tmp_path):
    """fastai's TensorImage dispatch is stripped before the forward (and before the channels_last copy)."""
    learn, _ = tiny_learner(tmp_path)
    seen = set()
    handle = learn.model.register_forward_pre_hook(lambda mod, args: seen.add(type(args[0])))
    learn.fit(1, 1e-3)
    handle.remove()
    assert seen == {torch.Tensor}
