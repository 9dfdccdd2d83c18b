"""fastai's Recorder and metrics without a host-device synchronisation per batch.

Stock fastai copies every batch's loss (and, in validation, every metric) to the CPU (`to_detach(...,
cpu=True)`) and the smoothed loss is read back for the progress bar: on a GPU each copy waits for the
batch's whole forward and backward, so the device idles while the host prepares the next step. Here the
running sums stay on the device; the smoothed-loss history is copied in one transfer every `every` training
batches and at the end of each training pass (the LR finder, which stops on the smoothed loss, gets it every
batch), and the epoch's loss and metrics are read once, when fastai logs them. The recorded values are the
same numbers fastai's own Recorder keeps (tests/train/test_recording.py).
"""

from __future__ import annotations

import torch
from fastai.callback.core import Callback
from fastai.learner import AvgLoss, AvgMetric, AvgSmoothLoss, Recorder
from fastai.torch_core import find_bs, to_detach

FLUSH_EVERY = 32  # training batches between two copies of the smoothed-loss history to the host


class DeviceAvgMetric(AvgMetric):
    """fastai's AvgMetric, summed on the device (read once per validation pass)."""

    def accumulate(self, learn):
        bs = find_bs(learn.yb)
        self.total += learn.to_detach(self.func(learn.pred, *learn.yb), cpu=False) * bs
        self.count += bs


class DeviceAvgLoss(AvgLoss):
    """fastai's AvgLoss (the validation loss), summed on the device."""

    def accumulate(self, learn):
        bs = find_bs(learn.yb)
        self.total += learn.to_detach(learn.loss.mean(), cpu=False) * bs
        self.count += bs


class DeviceAvgSmoothLoss(AvgSmoothLoss):
    """fastai's exponentially smoothed training loss, kept on the device."""

    def accumulate(self, learn):
        self.count += 1
        loss = to_detach(learn.loss.mean(), cpu=False)
        self.val = torch.lerp(loss, self.val.to(loss.device), self.beta)


class DeviceRecorder(Recorder):
    """fastai's Recorder (still `learn.recorder`) over the device-side metrics above."""

    def __init__(self, every: int = FLUSH_EVERY, **kwargs):
        super().__init__(**kwargs)
        self.loss, self.smooth_loss = DeviceAvgLoss(), DeviceAvgSmoothLoss(beta=self.smooth_loss.beta)
        self.every, self._pending = int(every), []

    @property
    def name(self) -> str:
        return "recorder"  # what fastai and this package look up

    def before_fit(self):
        super().before_fit()
        self._pending = []

    def after_batch(self):
        if len(self.yb) == 0:
            return
        for met in self._train_mets if self.training else self._valid_mets:
            met.accumulate(self.learn)
        if not self.training:
            return
        self.lrs.append(self.opt.hypers[-1]["lr"])
        self._pending.append(self.smooth_loss.value)
        if len(self._pending) >= (1 if hasattr(self.learn, "lr_finder") else self.every):
            self.flush()

    def flush(self) -> None:
        """Copy the pending smoothed losses to the host in one transfer (0-d CPU tensors, as fastai keeps)."""
        if self._pending:
            values = torch.stack(self._pending).cpu().unbind()
            self.losses.extend(values)
            self.learn.smooth_loss = values[-1]  # what the progress bar shows
            self._pending = []

    def after_train(self):
        self.flush()
        super().after_train()

    def after_epoch(self):
        self.flush()
        super().after_epoch()

    def after_fit(self):
        self.flush()


def use_device_recorder(learn, metrics: list) -> None:
    """Swap the Learner's Recorder and metrics for the device-side ones."""
    learn.remove_cb(learn.recorder)
    learn.add_cb(DeviceRecorder())
    learn.metrics = [DeviceAvgMetric(m) for m in metrics]


class PlainBatch(Callback):
    """Batches enter the model as plain tensors (optionally channels_last).

    fastai's TensorImage/TensorBase route every torch call through their `__torch_function__` (type
    bookkeeping for show/decode): a few microseconds per op, thousands of ops per forward and backward.
    fastai's CastToTensor (order 9) also strips them; doing it first (order 4) spares the channels_last copy
    the dispatch too. channels_last: faster convolutions on tensor cores, and with oneDNN on the CPU.
    """

    order = 4

    def __init__(self, channels_last: bool = False):
        self.channels_last = channels_last

    def before_batch(self):
        xb = tuple(x.as_subclass(torch.Tensor) if isinstance(x, torch.Tensor) else x for x in self.xb)
        if self.channels_last:
            xb = tuple(x.contiguous(memory_format=torch.channels_last) if isinstance(x, torch.Tensor) and x.ndim == 4
                       else x for x in xb)
        self.learn.xb = xb
        self.learn.yb = tuple(y.as_subclass(torch.Tensor) if isinstance(y, torch.Tensor) else y for y in self.yb)
