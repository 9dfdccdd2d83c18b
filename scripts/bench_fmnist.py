"""Fashion-MNIST epoch benchmark: the project's training (data.in_memory fast path) vs a bare PyTorch loop.

Both sides, in one run on one device, train the same model (`models.build.build_model` of the config's
backbone and head) with the same batch size, precision (fp32 on a CPU, bf16 autocast on a GPU) and
channels_last layout, over the same in-memory uint8 tensors (fold 0: 48k training, 12k validation images):
  project: `train.fold.train_fold` exactly as `fashiontag train`/`fmnist` run it (fastai Learner, one-cycle,
           the in-memory TensorLoader + device-side batch transform, EpochLogger, checkpoints);
           the epoch time is the one its log.csv records (training + validation);
  bare:    index_select + normalise + forward/backward/Adam step with torch's OneCycleLR, then a
           validation pass, timed the same way.
The two alternate (`--repeats` times) so a change of machine load hits both; the best epoch of each counts.

    .venv/bin/python scripts/bench_fmnist.py                         # fmnist_cnn3, plain epochs
    .venv/bin/python scripts/bench_fmnist.py --config fmnist_cnn4 --aug --out bench_fmnist.json
    .venv/bin/python scripts/bench_fmnist.py --synthetic 3000        # generated images (tests, no dataset)
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from fashiontag.core.config import load_config
from fashiontag.core.devices import describe_device, resolve_device, tune_kernels
from fashiontag.core.files import atomic_write_json
from fashiontag.core.logs import setup_logging
from fashiontag.data.idx import CLASSES, KEY, load_split
from fashiontag.data.tensor_augment import BatchTransform
from fashiontag.data.tensor_images import TensorImages
from fashiontag.models.build import build_model, head_spec
from fashiontag.recipes.fmnist import NO_AUGMENT
from fashiontag.train.fold import KeyData, train_fold

log = logging.getLogger("bench_fmnist")
TARGET = 0.70  # the project must train at >= 70% of the bare loop's speed


def load_images(idx_dir: str, synthetic: int | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 images and (N,) labels: the official training split, or generated stand-ins."""
    if synthetic:
        rng = np.random.default_rng(seed)
        labels = np.arange(synthetic) % len(CLASSES)
        images = np.clip(labels[:, None, None] * 25 + 10 + rng.normal(0, 30, (synthetic, 28, 28)), 0, 255)
        return images.astype(np.uint8), labels.astype(np.int64)
    split = load_split(idx_dir, "train")
    return split.images, split.labels


def key_data(images: np.ndarray, labels: np.ndarray, run_dir: Path, seed: int = 0) -> KeyData:
    """The in-memory tensors as the training runner's KeyData: fold 0 = a seeded 20% of the rows."""
    n = len(labels)
    fold = np.ones(n, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(n)[: n // 5]] = 0
    table = pd.DataFrame({"image": [f"Images/{KEY}/train_{i:05d}.png" for i in range(n)], "key": KEY,
                          "label": ["n" * y + "y" + "n" * (len(CLASSES) - 1 - y) for y in labels],
                          "y": labels, "line": np.arange(1, n + 1), "fold": fold})
    pixels = torch.from_numpy(images[:, None]).contiguous()
    cache = TensorImages(pixels, np.ones(n, dtype=bool), run_dir / "images.npy")
    targets = np.eye(len(CLASSES), dtype=np.float32)[labels]
    return KeyData(KEY, list(CLASSES), table, cache, targets, run_dir / KEY)


def project_epoch(kd: KeyData, cfg: dict) -> float:
    """One epoch of train_fold (forced afresh); its log.csv time (training + validation), in seconds."""
    train_fold(kd, 0, cfg)
    return float(pd.read_csv(kd.key_dir / "fold_0" / "log.csv")["time"].iloc[-1])


def bare_epoch(kd: KeyData, cfg: dict, device: torch.device) -> float:
    """One epoch of a plain loop over the same tensors, model, batch, precision and layout; seconds."""
    train, aug = cfg["train"], cfg["augment"]
    torch.manual_seed(int(cfg["seed"]))
    model, tcfg = build_model(cfg["model"]["backbone"], len(CLASSES), head_spec(cfg["model"]), {"pretrained": False})
    model = model.to(device).to(memory_format=torch.channels_last)
    pixels = kd.cache.pixels.to(device)
    labels = torch.as_tensor(np.array(kd.table["y"], dtype=np.int64), device=device)
    folds = kd.table["fold"].to_numpy()
    train_rows = torch.as_tensor(np.flatnonzero(folds != 0), device=device)
    valid_rows = torch.as_tensor(np.flatnonzero(folds == 0), device=device)
    bs = int(train["batch_size"])
    steps = len(train_rows) // bs
    opt = torch.optim.Adam(model.parameters(), lr=float(train["lr"]))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, float(train["lr"]), total_steps=steps, pct_start=0.25)
    scale = (1.0 / (255.0 * torch.tensor(tcfg["std"], device=device))).view(1, 3, 1, 1)
    bias = (-torch.tensor(tcfg["mean"], device=device) / torch.tensor(tcfg["std"], device=device)).view(1, 3, 1, 1)
    augment = BatchTransform(pixels.shape[-1], tcfg["mean"], tcfg["std"], aug, device) if aug["rotate"] else None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def batch(rows: torch.Tensor) -> torch.Tensor:
        u8 = pixels.index_select(0, rows)
        if augment is not None:
            return augment(u8)
        return torch.addcmul(bias, u8.float(), scale).contiguous(memory_format=torch.channels_last)

    t0 = time.perf_counter()
    model.train()
    order = train_rows[torch.randperm(len(train_rows), device=device)]
    for i in range(steps):
        rows = order[i * bs:(i + 1) * bs]
        with autocast:
            loss = F.cross_entropy(model(batch(rows)).float(), labels.index_select(0, rows))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    hits = torch.zeros((), device=device)
    with torch.no_grad(), autocast:
        for i in range(0, len(valid_rows), bs):
            rows = valid_rows[i:i + bs]
            hits += (model(batch(rows)).argmax(-1) == labels.index_select(0, rows)).sum()
    accuracy = float(hits) / len(valid_rows)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    log.info("bare epoch: %.1fs (valid accuracy %.4f)", seconds, accuracy)
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="fmnist_cnn3", help="a Fashion-MNIST config (model, batch, lr)")
    p.add_argument("--aug", action="store_true", help="both sides augment (the config's rotation/shift/zoom)")
    p.add_argument("--repeats", type=int, default=2, help="epochs of each side, alternating")
    p.add_argument("--device", default="auto")
    p.add_argument("--idx-dir", default=None, help="Fashion-MNIST idx files (default: the config's fmnist.idx_dir)")
    p.add_argument("--synthetic", type=int, default=None, help="N generated images instead of the dataset")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    setup_logging()
    device = resolve_device(args.device)
    tune_kernels(device)
    base = load_config(args.config, family="fmnist")
    images, labels = load_images(args.idx_dir or base["fmnist"]["idx_dir"], args.synthetic)
    with tempfile.TemporaryDirectory(prefix="bench_fmnist_") as tmp:
        sets = [f"train.device={device}", "train.unfrozen_epochs=1", "train.frozen_epochs=0", "train.force=true",
                "train.lr_find=false", "train.progress=log", f"runs_dir={tmp}", "data.in_memory=true"]
        cfg = load_config(args.config, sets)
        if not args.aug:
            cfg["augment"].update(NO_AUGMENT)
        kd = key_data(images, labels, Path(tmp))
        times: dict[str, list[float]] = {"bare": [], "project": []}
        for _ in range(args.repeats):
            times["bare"].append(bare_epoch(kd, cfg, device))
            times["project"].append(project_epoch(kd, cfg))
    n = len(labels)
    best = {k: min(v) for k, v in times.items()}
    ratio = best["bare"] / best["project"]
    result = {"config": args.config, "model": cfg["model"]["backbone"], "device": describe_device(device),
              "batch": int(cfg["train"]["batch_size"]), "augment": args.aug, "images": n,
              "train_images": int(n - n // 5), "valid_images": int(n // 5), "epoch_seconds": times,
              "best_seconds": best, "img_per_s": {k: (n - n // 5) / v for k, v in best.items()},
              "project_vs_bare": ratio, "target": TARGET, "passed": ratio >= TARGET}
    print(f"{result['model']} batch {result['batch']} {'augmented' if args.aug else 'plain'} on "
          f"{result['device']}: {n - n // 5} train + {n // 5} valid images per epoch")
    print(f"  bare loop: {best['bare']:.1f} s/epoch ({result['img_per_s']['bare']:.0f} train img/s)")
    print(f"  project:   {best['project']:.1f} s/epoch ({result['img_per_s']['project']:.0f} train img/s)")
    print(f"  project / bare speed: {ratio:.0%} (target >= {TARGET:.0%}: {'met' if ratio >= TARGET else 'NOT met'})")
    if args.out:
        atomic_write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
