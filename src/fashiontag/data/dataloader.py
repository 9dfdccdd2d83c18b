"""fastai's TfmdDL with worker processes that live across epochs and non-blocking copies to the device.

fastai's DataLoader builds torch's multiprocessing iterator itself at every `iter()` (every epoch, and every
validation pass), so `persistent_workers` never takes effect: each epoch forks `num_workers` processes
again (12 forks of a process holding a model and CUDA context, per epoch and per validation pass).

The catch is the shuffle: fastai draws an epoch's sample order in the main process (`get_idxs`) and the
workers, forked afterwards, inherit it. Workers forked once would keep serving the first epoch's order.
So here the main process draws the order exactly as fastai does (same random stream, so the same batches as
fastai with or without workers) and writes it into a shared-memory tensor before torch's iterator tells the
workers to start the epoch (`_ResumeIteration` through their index queues); each worker reads it there when
it restarts its iterator. torch's own `_reset` handles epochs abandoned half-way (the LR finder stopping
early): it drains what the workers had prefetched before resuming them.

Batches are pinned by torch's pin-memory thread (pin_memory=True on CUDA) and copied with
non_blocking=True, so the host queues the copy and the batch transforms behind the running step instead of
waiting for the copy. Under DDP fastai's DistributedDL wraps these loaders with its own (per-epoch) workers.
"""

from __future__ import annotations

import torch
from fastai.data.core import TfmdDL
from fastai.data.load import _FakeLoader
from fastai.torch_core import to_device
from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter, _SingleProcessDataLoaderIter


class _PersistentFakeLoader(_FakeLoader):
    """fastai's bridge to torch's iterator, keeping one multiprocessing iterator (and its workers)."""

    def __init__(self, d, pin_memory: bool, num_workers: int, timeout, pin_memory_device: str = ""):
        super().__init__(d, pin_memory, num_workers, timeout, persistent_workers=True,
                         pin_memory_device=pin_memory_device)
        self.order: torch.Tensor | None = None  # this epoch's sample order, in shared memory
        # torch draws the workers' base seed from this generator, not from the global torch stream, so
        # reusing the workers changes no random draw the training makes (and resuming stays exact).
        self.generator = torch.Generator().manual_seed(0)
        self._iterator: _MultiProcessingDataLoaderIter | None = None

    def __iter__(self):
        # In a worker, at each epoch's start: take the order the main process published for it.
        if self.order is not None:
            self.d._DataLoader__idxs = self.order.tolist()
        return super().__iter__()

    def epoch(self, idxs: list) -> _MultiProcessingDataLoaderIter:
        """In the main process: publish `idxs`, then start (first epoch) or resume the workers on it."""
        order = torch.as_tensor(list(idxs), dtype=torch.int64)
        if self._iterator is not None and self.order is not None and self.order.shape == order.shape:
            self.order.copy_(order)  # before _reset queues the workers' resume messages
            self._iterator._reset(self)
        else:
            self.shutdown()
            self.order = order.share_memory_()
            self._iterator = _MultiProcessingDataLoaderIter(self)
        return self._iterator

    def shutdown(self) -> None:
        """Stop the workers now (they also stop when the loader is garbage-collected or the process exits)."""
        if self._iterator is not None:
            self._iterator._shutdown_workers()
            self._iterator = None

    def __getstate__(self) -> dict:  # spawn/forkserver workers get the loader pickled, never the iterator
        state = dict(self.__dict__)
        state["_iterator"] = None
        return state


class DeviceDL(TfmdDL):
    """TfmdDL whose worker processes persist across epochs (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        fake = self.fake_l
        if fake.num_workers > 0:
            self.fake_l = _PersistentFakeLoader(self, fake.pin_memory, fake.num_workers, fake.timeout,
                                                fake.pin_memory_device)

    def __iter__(self):
        # fastai's DataLoader.__iter__, with the order handed to persistent workers and non-blocking copies.
        self.randomize()
        self.before_iter()
        self._DataLoader__idxs = self.get_idxs()  # in the main process, from fastai's own random stream
        fake = self.fake_l
        if isinstance(fake, _PersistentFakeLoader) and fake.num_workers > 0:
            batches = fake.epoch(self._DataLoader__idxs)
        elif fake.num_workers > 0:  # fastai's own fake loader (e.g. swapped in by a subclass): fresh workers
            batches = _MultiProcessingDataLoaderIter(fake)
        else:
            batches = _SingleProcessDataLoaderIter(fake)
        for b in batches:
            if self.pin_memory and type(b) is list:  # pinning turns tuples into lists
                b = tuple(b)
            if self.device is not None:
                b = to_device(b, self.device, non_blocking=True)
            yield self.after_batch(b)
        self.after_iter()
        if hasattr(self, "it"):
            del self.it

    def release_workers(self) -> None:
        """Stop this loader's worker processes (a later epoch starts new ones)."""
        if isinstance(self.fake_l, _PersistentFakeLoader):
            self.fake_l.shutdown()


def release_workers(dls) -> None:
    """Stop the worker processes of every loader in a fastai DataLoaders (e.g. a finished stage's)."""
    for dl in getattr(dls, "loaders", [dls]):
        if isinstance(dl, DeviceDL):
            dl.release_workers()
