"""The measurements behind scripts/bench.py: each returns images (or view-images) per second on one device.

Every measurement runs what training runs for one `Setup`, read from a real config (configs/*.yaml): its
backbone, batch size, worker count, precision, channels_last, augmentation, optimizer, and the image cache at
the config's cache size (training shrinks batches from it to the stage size on the device).

  bare_train / bare_infer   the limit: steps on synthetic tensors already on the device, in the setup's
                            precision and layout
  loader_rate               the project's training input pipeline alone: uint8 cache rows -> DataLoader ->
                            device -> fastai batch transforms (augmentation, normalisation) on the device
  project_train             that pipeline feeding fastai's Learner (make_learner: the config's precision,
                            channels_last, loss and optimiser); `compile` adds train.compile (torch.compile)
  project_tta               the default TTA through the project's test loaders (original + 4 augmented views),
                            with the setup's workers, after a warm-up pass
  plain_loop                torchvision-style DataLoader decoding JPEGs with PIL each time + a plain timm loop,
                            in the setup's precision (timm's default layout)
  step_breakdown            a profile of the project's training loop: seconds waiting for the input pipeline vs
                            seconds in the step (synchronised at each boundary), and torch.profiler's top ops
"""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fashiontag.core.config import load_config
from fashiontag.data.cache import build_cache
from fashiontag.data.dataloader import release_workers
from fashiontag.data.images import open_rgb
from fashiontag.data.loaders import fold_dataloaders, test_dataloader
from fashiontag.models.build import build_model, head_spec
from fashiontag.train.learner import make_learner

MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
N_CLASSES = 10
PREFETCH = 2  # batches each worker prepares ahead (fastai's loader fixes torch's prefetch_factor at 2)


@dataclass(frozen=True)
class Setup:
    """One measured configuration, as training runs it."""

    label: str
    backbone: str
    size: int          # the training (stage) size
    batch: int
    cache_size: int    # side of the cached uint8 images, as `fashiontag train` builds them
    workers: int
    precision: str     # bf16 | fp16 | fp32 (always fp32 on the CPU, as training)
    train: dict        # the config's train section (what make_learner reads)
    augment: dict
    head: dict
    tta: dict          # the config's TTA plan (base.yaml: the original + 4 of 8 augmented views)


def setup_from_config(config: str | None, size: int, device: torch.device, batch: int | None = None,
                      workers: int | None = None, backbone: str | None = None) -> Setup:
    """A Setup from a config file (None: configs/base.yaml), optionally overriding batch, workers, backbone."""
    cfg = load_config(config)
    train = dict(cfg["train"])
    stages = [int(s) for s in train["stages"]]
    precision = train["precision"] if device.type == "cuda" else "fp32"
    name = Path(config).stem if config else "base"
    bb = backbone or cfg["model"]["backbone"]
    return Setup(
        label=f"{bb}@{size}" + (f" ({name})" if config else ""), backbone=bb, size=int(size),
        batch=int(batch or train["batch_size"]), workers=int(train["num_workers"] if workers is None else workers),
        cache_size=int(cfg["cache"]["size"] or max(stages + [int(size)])) if config else int(size),
        precision=precision, train=train, augment=dict(cfg["augment"]), head=head_spec(cfg["model"]),
        tta=dict(cfg["tta"]))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def free(device: torch.device) -> None:
    """Release what the last measurement left, so the next one starts from an empty device."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def autocast(s: Setup, device: torch.device):
    """The setup's precision, as training's MixedPrecision applies it (fp32: no autocast)."""
    if device.type == "cuda" and s.precision in ("bf16", "fp16"):
        return torch.autocast("cuda", dtype=torch.bfloat16 if s.precision == "bf16" else torch.float16)
    return contextlib.nullcontext()


def channels_last(s: Setup) -> bool:
    return bool(s.train.get("channels_last", True))


def make_model(s: Setup, device: torch.device, layout: bool = True) -> nn.Module:
    """The project's model (timm body + the config's head), in the setup's layout unless layout=False (the
    plain baseline keeps timm's default)."""
    model, _ = build_model(s.backbone, N_CLASSES, s.head, {"pretrained": False})
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if layout and channels_last(s) else model


def layout(s: Setup, x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last(s) else x


def warmup_batches(n: int, workers: int = 0) -> int:
    """Untimed batches first: longer than the workers' prefetch (so the timed window is not served from
    batches prepared while the model was being built) and than cudnn's per-shape autotuning."""
    return max(2, n // 10, PREFETCH * workers + 2)


def timed(step, n: int, bs: int, device: torch.device) -> float:
    """img/s of `step()` over n calls after the warm-up calls."""
    return timed_batches([None], lambda _: step(), n, bs, device)


def timed_batches(dl, step, n: int, bs: int, device: torch.device, workers: int = 0) -> float:
    """img/s of `step(batch)` over n batches drawn from `dl` (re-iterated as needed) after the warm-up."""
    warm, done, t0 = warmup_batches(n, workers), 0, 0.0
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


def bare_train(s: Setup, n: int, device: torch.device) -> float:
    model = make_model(s, device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type in ("cuda", "cpu"))
    x = layout(s, torch.randn(s.batch, 3, s.size, s.size, device=device))
    y = torch.randint(0, N_CLASSES, (s.batch,), device=device)

    def step():
        with autocast(s, device):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return timed(step, n, s.batch, device)


def bare_infer(s: Setup, n: int, device: torch.device) -> float:
    model = make_model(s, device).eval()
    x = layout(s, torch.randn(s.batch, 3, s.size, s.size, device=device))

    @torch.inference_mode()
    def step():
        with autocast(s, device):
            model(x)

    return timed(step, n, s.batch, device)


def project_dls(s: Setup, n: int, paths: list[str], cache_dir: Path, device: torch.device):
    """The project's training DataLoaders, as `fashiontag train` builds them: the distinct images decoded once
    into the uint8 cache at the setup's cache size, the training rows repeated until one epoch holds the
    warm-up and timed batches (so no epoch boundary or validation pass falls inside the timed window)."""
    distinct = list(dict.fromkeys(paths))
    cache = build_cache(distinct, s.cache_size, cache_dir, name="bench", workers=max(1, s.workers))
    need = s.batch * (n + warmup_batches(n, s.workers) + 4)
    rows = np.arange(max(need, len(distinct))) % len(distinct)
    targets = np.eye(N_CLASSES, dtype=np.float32)[np.arange(len(distinct)) % N_CLASSES]
    return fold_dataloaders(cache, targets, rows, rows[: s.batch], s.size, MEAN, STD, s.augment, s.batch,
                            device, s.workers)


def loader_rate(s: Setup, n: int, paths: list[str], cache_dir: Path, device: torch.device) -> float:
    """img/s the input pipeline delivers with no model: its ceiling."""
    dls = project_dls(s, n, paths, cache_dir, device)
    try:
        return timed_batches(dls.train, lambda batch: None, n, s.batch, device, s.workers)
    finally:
        release_workers(dls)


def _learner(s: Setup, n: int, paths: list[str], cache_dir: Path, device: torch.device, compile_model: bool):
    dls = project_dls(s, n, paths, cache_dir, device)
    train_cfg = {**s.train, "compile": compile_model}
    return make_learner(make_model(s, device), dls, train_cfg, cache_dir, device), len(dls.train)


def _fit_batches(learn, n_batches: int, n_per_epoch: int, cbs: list) -> None:
    """Run fastai's loop until a callback cancels it (one-cycle-free: plain fit at a fixed lr)."""
    epochs = int(np.ceil(n_batches / max(1, n_per_epoch))) + 1
    try:
        with learn.no_bar(), learn.no_logging():
            learn.fit(epochs, 1e-4, cbs=cbs)
    finally:
        release_workers(learn.dls)


def project_train(s: Setup, n: int, paths: list[str], cache_dir: Path, device: torch.device,
                  compile_model: bool = False) -> float:
    from fastai.callback.core import Callback, CancelFitException

    learn, per_epoch = _learner(s, n, paths, cache_dir, device, compile_model)
    # torch.compile traces in the first batches: warm up longer so compilation is not timed.
    warm = warmup_batches(n, s.workers) + (3 if compile_model else 0)

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
                self.rate = n * s.batch / (time.perf_counter() - self.t0)
                raise CancelFitException

    clock = Clock()
    _fit_batches(learn, warm + n, per_epoch, [clock])
    return clock.rate


def step_breakdown(s: Setup, n: int, paths: list[str], cache_dir: Path, device: torch.device,
                   top: int = 15) -> dict:
    """Where the project's training loop spends its time, measured (not guessed).

    fastai's loop is `for b in dl: one_batch(b)`; the input side (worker wait, host-to-device copy and the
    batch transforms, which fastai runs inside the loader's iteration) lies between one after_batch and the
    next before_batch, the step (forward, loss, backward, optimiser) between before_batch and after_batch.
    The device is synchronised at both boundaries, so each side's GPU work is counted where it belongs.
    """
    from fastai.callback.core import Callback, CancelFitException
    from torch.profiler import ProfilerActivity, profile

    learn, per_epoch = _learner(s, n, paths, cache_dir, device, False)
    warm = warmup_batches(n, s.workers)

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


def project_tta(s: Setup, paths: list[str], cache_dir: Path, device: torch.device, seed: int = 42) -> float:
    """The config's TTA (base.yaml: original + 4 seeded augmented views) through the project's own
    predict_views and test loaders with the setup's workers: view-images per second over the distinct
    `paths`, image cache already built, after an untimed pass over the first batches (cudnn autotuning)."""
    from fashiontag.models.tta import ORIG, predict_views, view_plan

    model = make_model(s, device).eval()
    distinct = list(dict.fromkeys(paths))
    pre = {"size": s.size, "cache_size": s.cache_size, "mean": MEAN, "std": STD, "augment": s.augment,
           "resize": "pad", "pad_value": [124, 116, 104]}

    def loaders(images: list[str]) -> dict:
        return {aug: test_dataloader(images, pre, s.batch, device, augment=aug, cache_dir=cache_dir,
                                     num_workers=s.workers) for aug in (False, True)}

    warm = loaders(distinct[: 2 * s.batch])
    predict_views(model, warm.__getitem__, [ORIG, 0], seed, device)
    for dl in warm.values():
        release_workers(dl)
    timed_loaders = loaders(distinct)
    plan = view_plan(s.tta, seed)
    sync(device)
    t0 = time.perf_counter()
    predict_views(model, timed_loaders.__getitem__, plan, seed, device)
    sync(device)
    rate = len(plan) * len(distinct) / (time.perf_counter() - t0)
    for dl in timed_loaders.values():
        release_workers(dl)
    return rate


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


def plain_loop(s: Setup, n: int, paths: list[str], device: torch.device, train: bool) -> float:
    model = make_model(s, device, layout=False).train(train)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dl = torch.utils.data.DataLoader(FileSet(paths, s.size, train), batch_size=s.batch, shuffle=train,
                                     num_workers=s.workers, pin_memory=device.type == "cuda",
                                     drop_last=True, persistent_workers=s.workers > 0)
    if len(dl) == 0:
        raise ValueError(f"{len(paths)} images make no full batch of {s.batch}")

    def step(batch) -> None:
        x, y = (t.to(device, non_blocking=True) for t in batch)
        with torch.set_grad_enabled(train), autocast(s, device):
            out = model(x)
            if train:
                nn.functional.cross_entropy(out, y).backward()
        if train:
            opt.step()
            opt.zero_grad(set_to_none=True)

    return timed_batches(dl, step, n, s.batch, device, s.workers)
