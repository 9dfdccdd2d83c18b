"""Throughput benchmark: the bare model (the limit) vs the project's pipeline vs a plain DataLoader loop.

For each (backbone, size) it measures, in one run on one device:
  train  (a) bare:    optimizer steps on synthetic tensors already on the device
         (b) project: fashiontag's uint8 image cache + fastai batch transforms on the device + Learner
         (c) plain:   torchvision-style DataLoader decoding JPEGs with PIL + a plain timm loop
  infer  (a) bare eval forward on synthetic tensors, (b) the project's default TTA (views/s),
         (c) a plain timm eval loop over decoded JPEGs
and prints img/s and each ratio to (a). On a CPU it runs a small version and says so.

    .venv/bin/python scripts/bench.py                      # auto: GPU sizes on CUDA, small on CPU
    .venv/bin/python scripts/bench.py --models efficientnet_lite0:224 --batches 20
    .venv/bin/python scripts/bench.py --tag   # `fashiontag tag` vs a plain timm eval loop (scripts/bench_tag.py)
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fashiontag.data.cache import build_cache
from fashiontag.data.images import is_image_file, open_rgb
from fashiontag.logs import setup_logging
from fashiontag.models.build import build_model
from fashiontag.train.data import fold_dataloaders, test_dataloader
from fashiontag.train.learner import make_learner

log = logging.getLogger("bench")
GPU_MODELS = ["resnext101_32x8d:224", "resnext101_32x8d:512", "efficientnet_lite0:224"]
CPU_MODELS = ["efficientnet_lite0:96"]
HEAD = {"hidden": [512, 512], "dropout": 0.25, "pool": "avg"}
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
AUG = {"flip": True, "zoom": [1.0, 1.1], "rotate": 10, "contrast": 0.05, "p_affine": 0.75}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def make_model(backbone: str, device: torch.device) -> nn.Module:
    model, _ = build_model(backbone, 10, HEAD, {"pretrained": False})
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def timed(step, n: int, warmup: int, bs: int, device: torch.device) -> float:
    """img/s of `step()` over n calls after `warmup` calls."""
    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sync(device)
    return n * bs / (time.perf_counter() - t0)


def bare_train(backbone: str, size: int, bs: int, n: int, device: torch.device) -> float:
    model = make_model(backbone, device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(bs, 3, size, size, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (bs,), device=device)

    def step():
        with autocast(device):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return timed(step, n, max(2, n // 5), bs, device)


def bare_infer(backbone: str, size: int, bs: int, n: int, device: torch.device) -> float:
    model = make_model(backbone, device).eval()
    x = torch.randn(bs, 3, size, size, device=device)

    @torch.no_grad()
    def step():
        with autocast(device):
            model(x)

    return timed(step, n, max(2, n // 5), bs, device)


def project_train(backbone: str, size: int, bs: int, n: int, paths: list[str], cache_dir: Path,
                  device: torch.device, workers: int) -> float:
    from fastai.callback.core import Callback, CancelFitException

    cache = build_cache(paths, size, cache_dir, name="bench")
    targets = np.eye(10, dtype=np.float32)[np.arange(len(paths)) % 10]
    rows = np.arange(len(paths))
    dls = fold_dataloaders(cache, targets, rows, rows[:bs], size, MEAN, STD, AUG, bs, device, workers)
    model = make_model(backbone, device)
    learn = make_learner(model, dls, {"precision": "bf16", "channels_last": True}, cache_dir, device)
    warm = max(2, n // 5)

    class Clock(Callback):
        order = 99

        def before_fit(self):
            self.count = 0

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
    epochs = int(np.ceil((warm + n) / max(1, len(dls.train)))) + 1
    with learn.no_bar(), learn.no_logging():
        learn.fit(epochs, 1e-4, cbs=[clock])
    return clock.rate


def project_tta(backbone: str, size: int, bs: int, paths: list[str], cache_dir: Path,
                device: torch.device, views: int = 5) -> float:
    """The default TTA (original + 4 random augmented views): view-images per second."""
    model = make_model(backbone, device).eval()
    pre = {"size": size, "cache_size": size, "mean": MEAN, "std": STD, "augment": AUG}
    loaders = [test_dataloader(paths, pre, bs, device, augment=v > 0, cache_dir=cache_dir) for v in (0, 1)]
    sync(device)
    t0 = time.perf_counter()
    with torch.no_grad(), autocast(device):
        for v in range(views):
            for (xb,) in loaders[min(v, 1)]:
                model(xb)
    sync(device)
    return views * len(paths) / (time.perf_counter() - t0)


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
        return self.tfm(open_rgb(self.paths[i])), i % 10


def plain_loop(backbone: str, size: int, bs: int, n: int, paths: list[str], device: torch.device,
               workers: int, train: bool) -> float:
    model = make_model(backbone, device).train(train)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dl = torch.utils.data.DataLoader(FileSet(paths, size, train), batch_size=bs, shuffle=train,
                                     num_workers=workers, pin_memory=device.type == "cuda",
                                     drop_last=True, persistent_workers=workers > 0)
    warm, done, t0 = max(2, n // 5), 0, 0.0
    while done < warm + n:
        for x, y in dl:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.set_grad_enabled(train), autocast(device):
                out = model(x)
                if train:
                    nn.functional.cross_entropy(out, y).backward()
            if train:
                opt.step()
                opt.zero_grad(set_to_none=True)
            done += 1
            if done == warm:
                sync(device)
                t0 = time.perf_counter()
            if done == warm + n:
                break
    sync(device)
    return n * bs / (time.perf_counter() - t0)


def find_images(src: str | None, tmp: Path) -> list[str]:
    if src:
        paths = sorted(str(p) for p in Path(src).rglob("*") if is_image_file(p))
    else:
        from fashiontag.data.demo import make_demo_data

        make_demo_data(tmp / "demo", n_train=120, n_test=8, size=256)
        paths = sorted(str(p) for p in (tmp / "demo" / "train").rglob("*.jpg"))
    if not paths:
        raise SystemExit(f"no images found in {src}")
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", help="backbone:size pairs (default: GPU or CPU set)")
    ap.add_argument("--images", help="folder of JPEGs (default: generated demo images)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--batches", type=int, default=None, help="timed batches per measurement")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--tag", action="store_true",
                    help="`fashiontag tag` vs a plain timm eval loop, no TTA and default TTA (scripts/bench_tag.py); "
                         "--images defaults to clothing-small/validation, --batch-size to 32")
    ap.add_argument("--tag-images", type=int, default=None, help="--tag: use only the first N photos")
    ap.add_argument("--tag-model", default="efficientnet_lite0:224", help="--tag: backbone:size of the run made")
    ap.add_argument("--tag-train-per-class", type=int, default=4, help="--tag: photos per class to train it on")
    ap.add_argument("--run", default=None, help="--tag: an existing training run instead of making one")
    args = ap.parse_args()
    setup_logging()
    torch.manual_seed(0)
    if args.tag:
        from bench_tag import run_tag_bench  # scripts/ is on sys.path when this file runs

        run_tag_bench(args)
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.type == "cuda"
    models = args.models or (GPU_MODELS if gpu else CPU_MODELS)
    bs = args.batch_size or (128 if gpu else 16)
    n = args.batches or (30 if gpu else 4)
    workers = args.workers if args.workers is not None else (12 if gpu else 0)
    if gpu:
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name()}  batch {bs}, {n} timed batches, {workers} workers")
    else:
        print(f"device: CPU ({torch.get_num_threads()} threads) -- SMALL version: batch {bs}, {n} timed "
              "batches; GPU targets need a CUDA device")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = find_images(args.images, Path(tmp))
        for spec in models:
            backbone, size = spec.split(":")[0], int(spec.split(":")[1])
            cache_dir = Path(tmp) / "cache"
            r = {"model": f"{backbone}@{size}"}
            r["bare"] = bare_train(backbone, size, bs, n, device)
            r["project"] = project_train(backbone, size, bs, n, paths, cache_dir, device, workers)
            r["plain"] = plain_loop(backbone, size, bs, n, paths, device, workers, train=True)
            r["bare_inf"] = bare_infer(backbone, size, bs, n, device)
            r["tta_inf"] = project_tta(backbone, size, bs, paths[: bs * n], cache_dir, device)
            r["plain_inf"] = plain_loop(backbone, size, bs, n, paths, device, workers, train=False)
            rows.append(r)
    print(f"\n{'model':28} {'train img/s: bare':>18} {'project':>16} {'plain':>16} | "
          f"{'infer: bare':>12} {'TTA views/s':>18} {'plain':>16}")
    def pct(r: dict, k: str, base: str) -> str:
        return f"{r[k]:8.1f} ({r[k] / r[base]:4.0%})"

    for r in rows:
        print(f"{r['model']:28} {r['bare']:18.1f} {pct(r, 'project', 'bare'):>16} {pct(r, 'plain', 'bare'):>16} | "
              f"{r['bare_inf']:12.1f} {pct(r, 'tta_inf', 'bare_inf'):>18} {pct(r, 'plain_inf', 'bare_inf'):>16}")


if __name__ == "__main__":
    main()
