"""The measurements behind scripts/bench.py: each returns images (or view-images) per second on one device.

  bare_train / bare_infer   the limit: steps on synthetic tensors already on the device (bf16 + channels_last
                            on CUDA, as the project trains)
  loader_rate               the project's training input pipeline alone: uint8 cache rows -> DataLoader ->
                            device -> fastai batch transforms (augmentation, normalisation) on the device
  project_train             that pipeline feeding fastai's Learner (make_learner: the project's precision,
                            channels_last, loss and optimiser); `compile` adds train.compile (torch.compile)
  project_tta               the default TTA through the project's test loaders (original + 4 augmented views)
  plain_loop                torchvision-style DataLoader decoding JPEGs with PIL each time + a plain timm loop
  step_breakdown            a profile of the project's training loop: seconds waiting for the input pipeline vs
                            seconds in the step (synchronised at each boundary), and torch.profiler's top ops
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fashiontag.core.config import load_config
from fashiontag.data.cache import build_cache
from fashiontag.data.images import open_rgb
from fashiontag.data.loaders import fold_dataloaders, test_dataloader
from fashiontag.models.build import build_model
from fashiontag.train.learner import make_learner

HEAD = {"hidden": [512, 512], "dropout": 0.25, "pool": "avg"}
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
AUG = load_config()["augment"]  # base.yaml's: flip, zoom 1-1.1, rotate 10, contrast 0.05 (p 0.75)
N_CLASSES = 10


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def free(device: torch.device) -> None:
    """Release what the last measurement left, so the next one starts from an empty device."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def make_model(backbone: str, device: torch.device, channels_last: bool = True) -> nn.Module:
    """The project's model (timm body + seed head). channels_last is the layout the project feeds on every
    device (fastest on tensor cores and with oneDNN on the CPU); the plain baseline keeps timm's default."""
    model, _ = build_model(backbone, N_CLASSES, HEAD, {"pretrained": False})
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def timed(step, n: int, bs: int, device: torch.device) -> float:
    """img/s of `step()` over n calls after the warm-up calls."""
    return timed_batches([None], lambda _: step(), n, bs, device)


def warmup_batches(n: int) -> int:
    return max(2, n // 5)


def bare_train(backbone: str, size: int, bs: int, n: int, device: torch.device) -> float:
    model = make_model(backbone, device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = nhwc(torch.randn(bs, 3, size, size, device=device))
    y = torch.randint(0, N_CLASSES, (bs,), device=device)

    def step():
        with autocast(device):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return timed(step, n, bs, device)


def bare_infer(backbone: str, size: int, bs: int, n: int, device: torch.device) -> float:
    model = make_model(backbone, device).eval()
    x = nhwc(torch.randn(bs, 3, size, size, device=device))

    @torch.no_grad()
    def step():
        with autocast(device):
            model(x)

    return timed(step, n, bs, device)


def project_dls(size: int, bs: int, paths: list[str], cache_dir: Path, device: torch.device, workers: int):
    """The project's training DataLoaders over the uint8 cache of `paths` (fold_dataloaders, as train does)."""
    cache = build_cache(paths, size, cache_dir, name="bench", workers=max(1, workers))
    targets = np.eye(N_CLASSES, dtype=np.float32)[np.arange(len(paths)) % N_CLASSES]
    rows = np.arange(len(paths))
    return fold_dataloaders(cache, targets, rows, rows[:bs], size, MEAN, STD, AUG, bs, device, workers)


def timed_batches(dl, step, n: int, bs: int, device: torch.device) -> float:
    """img/s of `step(batch)` over n batches drawn from `dl` (re-iterated as needed) after the warm-up."""
    warm, done, t0 = warmup_batches(n), 0, 0.0
    while done < warm + n:
        for batch in dl:
            step(batch)
            done += 1
            if done == warm:
                sync(device)
                t0 = time.perf_counter()
            if done == warm + n:
                break
    sync(device)
    return n * bs / (time.perf_counter() - t0)


def loader_rate(size: int, bs: int, n: int, paths: list[str], cache_dir: Path, device: torch.device,
                workers: int) -> float:
    """img/s the input pipeline delivers with no model: its ceiling."""
    dls = project_dls(size, bs, paths, cache_dir, device, workers)
    return timed_batches(dls.train, lambda batch: None, n, bs, device)


def _learner(backbone: str, size: int, bs: int, paths: list[str], cache_dir: Path, device: torch.device,
             workers: int, compile_model: bool):
    dls = project_dls(size, bs, paths, cache_dir, device, workers)
    model = make_model(backbone, device)
    train_cfg = {**load_config()["train"], "label_smoothing": 0.0, "precision": "bf16", "channels_last": True,
                 "compile": compile_model}
    return make_learner(model, dls, train_cfg, cache_dir, device), len(dls.train)


def _fit_batches(learn, n_batches: int, n_per_epoch: int, cbs: list) -> None:
    """Run fastai's loop until a callback cancels it (one-cycle-free: plain fit at a fixed lr)."""
    epochs = int(np.ceil(n_batches / max(1, n_per_epoch))) + 1
    with learn.no_bar(), learn.no_logging():
        learn.fit(epochs, 1e-4, cbs=cbs)


def project_train(backbone: str, size: int, bs: int, n: int, paths: list[str], cache_dir: Path,
                  device: torch.device, workers: int, compile_model: bool = False) -> float:
    from fastai.callback.core import Callback, CancelFitException

    learn, per_epoch = _learner(backbone, size, bs, paths, cache_dir, device, workers, compile_model)
    # torch.compile traces in the first batches: warm up longer so compilation is not timed.
    warm = warmup_batches(n) + (3 if compile_model else 0)

    class Clock(Callback):
        order = 99

        def before_fit(self):
            self.count, self.rate = 0, float("nan")

        def after_batch(self):
            self.count += 1
            if self.count == warm:
                sync(device)
                self.t0 = time.perf_counter()
            if self.count == warm + n:
                sync(device)
                self.rate = n * bs / (time.perf_counter() - self.t0)
                raise CancelFitException

    clock = Clock()
    _fit_batches(learn, warm + n, per_epoch, [clock])
    return clock.rate


def step_breakdown(backbone: str, size: int, bs: int, n: int, paths: list[str], cache_dir: Path,
                   device: torch.device, workers: int, top: int = 15) -> dict:
    """Where the project's training loop spends its time, measured (not guessed).

    fastai's loop is `for b in dl: one_batch(b)`; the input side (worker wait, host-to-device copy and the
    batch transforms, which fastai runs inside the loader's iteration) lies between one after_batch and the
    next before_batch, the step (forward, loss, backward, optimiser) between before_batch and after_batch.
    The device is synchronised at both boundaries, so each side's GPU work is counted where it belongs.
    """
    from fastai.callback.core import Callback, CancelFitException
    from torch.profiler import ProfilerActivity, profile

    learn, per_epoch = _learner(backbone, size, bs, paths, cache_dir, device, workers, False)
    warm = warmup_batches(n)

    class Split(Callback):
        order = 99

        def before_fit(self):
            self.count, self.data, self.step, self.last = 0, 0.0, 0.0, None

        def before_batch(self):
            sync(device)
            now = time.perf_counter()
            if self.last is not None and self.count >= warm:
                self.data += now - self.last
            self.start = now

        def after_batch(self):
            sync(device)
            now = time.perf_counter()
            if self.count >= warm:
                self.step += now - self.start
            self.last, self.count = now, self.count + 1
            if self.count == warm + n:
                raise CancelFitException

    split = Split()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        _fit_batches(learn, warm + n, per_epoch, [split])
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    total = split.data + split.step
    return {"data_s": split.data, "step_s": split.step, "data_share": split.data / total if total else float("nan"),
            "batches": n, "top_ops": prof.key_averages().table(sort_by=sort, row_limit=top)}


def project_tta(backbone: str, size: int, bs: int, paths: list[str], cache_dir: Path,
                device: torch.device, seed: int = 42) -> float:
    """The default TTA (configs/base.yaml: original + 4 seeded augmented views) through the project's own
    predict_views and test loaders: view-images per second, image cache already built."""
    from fashiontag.models.tta import predict_views, view_plan

    model = make_model(backbone, device).eval()
    pre = {"size": size, "cache_size": size, "mean": MEAN, "std": STD, "augment": AUG}
    loaders = {aug: test_dataloader(paths, pre, bs, device, augment=aug, cache_dir=cache_dir) for aug in (False, True)}
    plan = view_plan(load_config(None)["tta"], seed)
    sync(device)
    t0 = time.perf_counter()
    predict_views(model, loaders.__getitem__, plan, seed, device)
    sync(device)
    return len(plan) * len(paths) / (time.perf_counter() - t0)


class FileSet(torch.utils.data.Dataset):
    """The plain baseline: decode each JPEG with PIL every time, torchvision transforms on the CPU."""

    def __init__(self, paths: list[str], size: int, train: bool):
        from torchvision import transforms as T

        aug = [T.RandomResizedCrop(size, scale=(0.6, 1.0)), T.RandomHorizontalFlip()] if train else [
            T.Resize(size), T.CenterCrop(size)]
        self.paths, self.tfm = paths, T.Compose([*aug, T.ToTensor(), T.Normalize(MEAN, STD)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.tfm(open_rgb(self.paths[i])), i % N_CLASSES


def plain_loop(backbone: str, size: int, bs: int, n: int, paths: list[str], device: torch.device,
               workers: int, train: bool) -> float:
    model = make_model(backbone, device, channels_last=False).train(train)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dl = torch.utils.data.DataLoader(FileSet(paths, size, train), batch_size=bs, shuffle=train,
                                     num_workers=workers, pin_memory=device.type == "cuda",
                                     drop_last=True, persistent_workers=workers > 0)
    if len(dl) == 0:
        raise ValueError(f"{len(paths)} images make no full batch of {bs}")

    def step(batch) -> None:
        x, y = (t.to(device, non_blocking=True) for t in batch)
        with torch.set_grad_enabled(train), autocast(device):
            out = model(x)
            if train:
                nn.functional.cross_entropy(out, y).backward()
        if train:
            opt.step()
            opt.zero_grad(set_to_none=True)

    return timed_batches(dl, step, n, bs, device)
