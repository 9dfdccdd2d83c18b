"""Data-parallel (DDP) training of a fold across processes, through fastai.distributed and accelerate.

`torchrun --nproc_per_node N` or `accelerate launch --multi_gpu --num_processes N` start N copies of
`fashiontag train`; each sees WORLD_SIZE=N and its RANK / LOCAL_RANK. They train the same folds
together (docs/MULTI_GPU.md): every fit runs inside fastai's `learn.distrib_ctx()`, which wraps the model
in DistributedDataParallel (accelerate) and gives each process 1/N of every epoch's images, so the global
batch is N x train.batch_size. Rank 0 alone writes files (folds, caches, configs, checkpoints, log.csv,
oof.csv, model.pth, preprocess.json, plots, done.json, the per-key merge); the others wait at barriers.

Everything here is a no-op in a single process (WORLD_SIZE unset or 1), so the ordinary path is unchanged.
Not supported under DDP, refused by `check_config`: `train.feature_cache` (a CPU fast path training a
head of a few thousand parameters on cached features: nothing for DDP to share, and its feature files would
be written by every rank), `--gpus N` (the other multi-GPU mode, one fold per GPU), and
`worn.mode=separate` (its group merge is not rank-aware).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

from fashiontag.core.errors import ConfigError, FashiontagError

log = logging.getLogger(__name__)

T = TypeVar("T")
# Rank 0 may build image caches or write a fold's outputs while the others wait at a barrier: far longer
# than NCCL's default 10 minute collective timeout allows.
WAIT_TIMEOUT = datetime.timedelta(hours=3)


def world_size() -> int:
    """Processes in the job (WORLD_SIZE, set by torchrun / accelerate launch); 1 when not launched so."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


# "1": a launch of ONE process (torchrun --nproc_per_node 1) still takes the whole DDP path: process group
# (NCCL on a GPU), DistributedDataParallel model, DistributedDL loaders. How a single-GPU machine checks that
# path (tests/gpu/); an ordinary one-process launch trains without any of it.
FORCE_DDP_ENV = "FASHIONTAG_DDP"


def is_distributed() -> bool:
    forced = os.environ.get(FORCE_DDP_ENV) == "1" and "LOCAL_RANK" in os.environ
    return world_size() > 1 or forced


def is_main() -> bool:
    """True in rank 0 (and in every ordinary single-process run): the process that writes files."""
    return rank() == 0


def _active() -> bool:
    return is_distributed() and torch.distributed.is_available() and torch.distributed.is_initialized()


def check_config(cfg: dict, gpus: int = 1) -> None:
    """Refuse what DDP does not support (see the module docstring), with the way out."""
    if cfg["train"]["feature_cache"]:
        raise ConfigError("train.feature_cache: true is a single-process CPU fast path (the head alone on cached "
                          "features); run it without torchrun/accelerate launch, or set train.feature_cache=false")
    if int(gpus) > 1:
        raise ConfigError(f"--gpus {gpus} (one fold per GPU) and DDP (one fold across {world_size()} processes) "
                          "exclude each other: drop --gpus, or run without torchrun/accelerate launch")
    if cfg["worn"]["mode"] == "separate":
        raise ConfigError("worn.mode=separate is not supported under DDP; train each group without "
                          "torchrun/accelerate launch, or use --gpus N")


def rank_device(device: torch.device) -> torch.device:
    """Under DDP a CUDA device becomes this process's own GPU (cuda:LOCAL_RANK); CPU stays CPU."""
    if is_distributed() and device.type == "cuda":
        return torch.device("cuda", local_rank())
    return device


def setup(cfg: dict, gpus: int = 1) -> None:
    """Join the process group (accelerate's PartialState: NCCL on GPUs, gloo on CPUs); rank > 0 logs warnings only.

    Idempotent; does nothing in a single process.
    """
    if not is_distributed() or _active():
        return
    check_config(cfg, gpus)
    try:
        from accelerate import PartialState
    except ImportError:
        raise FashiontagError("DDP training needs accelerate: pip install accelerate") from None
    from fashiontag.core.devices import resolve_device

    cuda = rank_device(resolve_device(cfg["train"]["device"])).type == "cuda"
    if cuda:
        torch.cuda.set_device(local_rank())
    PartialState(cpu=not cuda, timeout=WAIT_TIMEOUT)
    if not torch.distributed.is_initialized():  # accelerate leaves a lone process alone (FASHIONTAG_DDP=1)
        torch.distributed.init_process_group("nccl" if cuda else "gloo", timeout=WAIT_TIMEOUT)
    _patch_fastai_broadcast()
    atexit.register(_teardown)
    if not is_main():
        logging.getLogger().setLevel(logging.WARNING)  # one copy of the logs: rank 0's
    log.info("DDP: %d processes (%s, backend %s); rank 0 writes every file; global batch %d x %d",
             world_size(), "GPUs" if cuda else "CPU", torch.distributed.get_backend(), world_size(),
             int(cfg["train"]["batch_size"]))


def _teardown() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _patch_fastai_broadcast() -> None:
    """fastai's DistributedDL sends rank 0's sample order with `.cuda()` tensors (NCCL only); use the backend's
    device. And it has no `rng` of its own (see below)."""
    from fastai.distributed import DistributedDL

    def _broadcast(self, t, src):
        device = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
        t = torch.tensor(t, dtype=torch.long, device=device)
        torch.distributed.broadcast(t, src)
        return t.cpu().tolist()

    DistributedDL._broadcast = _broadcast
    # A DistributedDL draws each epoch's order from the loader it wraps (get_idxs, randomize); expose that
    # loader's random stream as its own, so a checkpoint taken mid-fit (loaders wrapped) saves and restores it.
    DistributedDL.rng = property(lambda self: self.dl.rng, lambda self, value: setattr(self.dl, "rng", value))


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if _active():
        torch.distributed.barrier()


def broadcast(value: T) -> T:
    """Rank 0's `value` on every rank (any picklable object; no-op in a single process)."""
    if not _active():
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def rank0_first(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `func` on rank 0, then (files it wrote now in place) on the other ranks."""
    if is_main():
        result = func(*args, **kwargs)
    barrier()
    if not is_main():
        result = func(*args, **kwargs)
    return result


def fit_ctx(learn, device: torch.device) -> contextlib.AbstractContextManager:
    """fastai's `learn.distrib_ctx()` under DDP (every fit inside it runs data-parallel), else a null context.

    sync_bn=False: each process normalises its own share of the batch (train.batch_size images). SyncBatchNorm
    would cost an all-reduce per BatchNorm layer, does not run on CPUs, and fastai's BnFreeze (train_bn: false)
    only recognises plain BatchNorm, so converted layers would silently start updating their statistics.
    """
    if not is_distributed():
        return contextlib.nullcontext(learn)
    if world_size() == 1:  # FASHIONTAG_DDP=1: accelerate does not wrap a lone process in DDP, so do it here
        return _one_process_ddp(learn, device)
    import fastai.distributed  # noqa: F401 - patches Learner.distrib_ctx

    return learn.distrib_ctx(sync_bn=False, cpu=device.type != "cuda")


@contextlib.contextmanager
def _one_process_ddp(learn, device: torch.device) -> Iterator:
    """What fastai's DistributedTrainer does for N processes, for one: the model in torch's
    DistributedDataParallel and the loaders in fastai's DistributedDL during every fit."""
    from fastai.callback.core import Callback
    from fastai.distributed import DistributedDL
    from torch.nn.parallel import DistributedDataParallel

    def wrap(dl):
        return dl if isinstance(dl, DistributedDL) else DistributedDL(dl, rank=0, world_size=1, device=dl.device)

    class OneProcessDDP(Callback):
        order = 11  # as fastai's DistributedTrainer

        def before_fit(self):
            ids = [device.index if device.index is not None else local_rank()] if device.type == "cuda" else None
            self.learn.model = DistributedDataParallel(self.model, device_ids=ids)
            self.old_dls = list(self.dls)
            self.learn.dls.loaders = [wrap(dl) for dl in self.dls]

        def before_train(self):
            self.learn.dl = wrap(self.learn.dl)

        def before_validate(self):
            self.learn.dl = wrap(self.learn.dl)

        def after_fit(self):
            self.learn.model, self.learn.dls.loaders = self.learn.model.module, self.old_dls

    cb = OneProcessDDP()
    learn.add_cb(cb)
    try:
        yield learn
    finally:
        learn.remove_cb(cb)


@contextlib.contextmanager
def solo() -> Iterator[None]:
    """Rank 0 working alone while the others wait (OOF predictions after training).

    fastai decides "distributed" from WORLD_SIZE at every call (`num_distrib`): its `to_detach` would
    all-gather every prediction batch with ranks that are not predicting and hang. Hide WORLD_SIZE meanwhile.
    """
    saved = os.environ.get("WORLD_SIZE")
    if saved is None or not is_distributed():
        yield
        return
    os.environ["WORLD_SIZE"] = "1"
    try:
        yield
    finally:
        os.environ["WORLD_SIZE"] = saved


def seed_offset() -> int:
    """Per-rank seed offset: different augmentation and dropout draws per process (DDP re-syncs the weights)."""
    return 1000 * rank() if is_distributed() else 0
