"""Throughput of `fashiontag tag` vs a plain timm eval loop: same photos, same model, same batch size, one run.

    make bench BENCH_ARGS=--tag                                # every clothing-small validation photo (341)
    .venv/bin/python scripts/bench.py --tag --tag-images 32    # a quick check that it works
    .venv/bin/python scripts/bench.py --tag --run runs/clothing_cpu --images DIR   # an existing run (all its folds)

Four measurements, each from cold (a fresh image cache; the CLI's start-up and imports excluded):
  tag          fashiontag.infer.tag.tag_images, as `fashiontag tag DIR --run RUN`: decode once into the uint8
               image cache (letterbox to 224), fastai batch transforms, the model in channels_last
  tag --tta    the same with the default TTA (configs/base.yaml: the original + 4 seeded augmented views)
  plain        a torch DataLoader: PIL decode + timm's eval transform (resize 256, centre crop 224, normalise),
               the same model in eval mode (default NCHW layout), torch.inference_mode
  plain TTA    the same decoded batch, then 4 augmented views of it (flip, rotation, zoom on the tensors) + original
img/s counts images, not views. Without --run the model is efficientnet_lite0 at 224 px (the packaged ImageNet
weights) trained here in seconds on a few dozen clothing-small photos (fold 0 only, frozen body, one epoch):
throughput does not depend on its accuracy.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

import torch

from fashiontag.data.images import is_image_file, open_rgb

log = logging.getLogger("bench.tag")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "clothing-small" / "validation"
KEY = "garment_type_labels"


def make_run(tmp: Path, photos: Path, per_class: int, backbone: str, size: int) -> Path:
    """runs/tagbench: fold 0 of 2 trained on `per_class` photos of each class folder of `photos`."""
    from fashiontag.core.config import load_config
    from fashiontag.data.import_folders import import_folders
    from fashiontag.train.runner import train_run

    src = tmp / "src"
    for folder in sorted(p for p in photos.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if is_image_file(p))[:per_class]
        (src / folder.name).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(f, src / folder.name / f.name)
    import_folders([src], tmp / "data", KEY)
    cfg = load_config(None, [
        f"model.backbone={backbone}", "model.pretrained=true", f"train.stages=[{size}]", "train.frozen_epochs=1",
        "train.unfrozen_epochs=0", "train.lr=1e-3", "train.lr_find=false", "train.batch_size=16",
        "train.num_workers=0", "train.progress=log", "data.n_folds=2", "exp=tagbench", f"runs_dir={tmp / 'runs'}",
        f"cache.dir={tmp / 'cache_train'}", f"data.folds_dir={tmp / 'folds'}",
    ])
    t0 = time.perf_counter()
    train_run(tmp / "data", KEY, "0", cfg)
    log.info("trained %s fold 0 in %.0fs", backbone, time.perf_counter() - t0)
    return tmp / "runs" / "tagbench"


def time_tag(run: Path, paths: list[str], tta: bool, bs: int, workers: int, cache_dir: Path) -> float:
    """img/s of tag_images over `paths` (a fresh cache dir: decoding is part of the measurement)."""
    from fashiontag.infer.tag import tag_images

    t0 = time.perf_counter()
    df, _ = tag_images(paths, run, top=3, tta=tta, progress="log",
                       overrides=[f"cache.dir={cache_dir}", f"train.batch_size={bs}", f"train.num_workers={workers}"])
    seconds = time.perf_counter() - t0
    assert df["image"].nunique() == len(paths), "tag lost images"
    return len(paths) / seconds


class Photos(torch.utils.data.Dataset):
    """The plain baseline: decode each photo with PIL, timm's eval transform."""

    def __init__(self, paths: list[str], tfm):
        self.paths, self.tfm = paths, tfm

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.tfm(open_rgb(self.paths[i]))


def plain_loop(model: torch.nn.Module, pre: dict, paths: list[str], views: int, bs: int, workers: int,
               device: torch.device) -> float:
    """img/s of a plain eval loop: DataLoader -> model -> softmax, `views` - 1 augmented views per batch."""
    from timm.data import create_transform
    from torchvision.transforms import v2

    size = int(pre["size"])
    tfm = create_transform(input_size=(3, size, size), interpolation="bilinear", crop_pct=0.875,
                           mean=tuple(pre["mean"]), std=tuple(pre["std"]))
    aug = v2.Compose([v2.RandomHorizontalFlip(), v2.RandomAffine(degrees=10, scale=(1.0, 1.1))])
    dl = torch.utils.data.DataLoader(Photos(paths, tfm), batch_size=bs, shuffle=False, num_workers=workers,
                                     pin_memory=device.type == "cuda")
    torch.manual_seed(0)
    t0 = time.perf_counter()
    out = []
    with torch.inference_mode():
        for x in dl:
            x = x.to(device, non_blocking=True)
            probs = torch.softmax(model(x), dim=-1)
            for _ in range(views - 1):
                probs = probs + torch.softmax(model(aug(x)), dim=-1)
            out.append((probs / views).cpu())
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    assert sum(len(o) for o in out) == len(paths)
    return len(paths) / seconds


def run_tag_bench(args: argparse.Namespace) -> None:
    """The `--tag` mode of scripts/bench.py."""
    import tempfile

    from fashiontag.core.config import load_config
    from fashiontag.fashionai.runs import fold_dirs, list_keys
    from fashiontag.models.build import load_fold_model
    from fashiontag.models.tta import view_plan

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bs = args.batch_size or 32
    workers = args.workers if args.workers is not None else 0
    src = Path(args.images) if args.images else SHARED
    if not src.is_dir():
        raise SystemExit(f"{src}: no such folder of photos (pass --images DIR)")
    paths = sorted(str(p) for p in src.rglob("*") if is_image_file(p))
    paths = paths[: args.tag_images] if args.tag_images else paths
    if not paths:
        raise SystemExit(f"no images in {src}")
    backbone, size = args.tag_model.split(":")[0], int(args.tag_model.split(":")[1])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        run = Path(args.run) if args.run else make_run(tmp, src, args.tag_train_per_class, backbone, size)
        keys = list_keys(run)
        folds = {k: fold_dirs(run / k) for k in keys}
        n_models = sum(len(f) for f in folds.values())
        model, pre = load_fold_model(next(iter(folds[keys[0]].values())), device)
        n_views = len(view_plan(load_config(None, [])["tta"], 0))  # the default TTA's view count
        with torch.inference_mode():  # first-call costs (thread pools, kernel choice) out of every measurement
            for fmt in (torch.channels_last, torch.contiguous_format):  # tag's layout, then the plain one
                x = torch.randn(bs, 3, int(pre["size"]), int(pre["size"]), device=device)
                model.to(memory_format=fmt)(x.contiguous(memory_format=fmt))
        print(f"device: {device} ({torch.get_num_threads()} threads); {len(paths)} photos from {src}; "
              f"{pre['backbone']} @ {pre['size']} px; batch {bs}; workers {workers}; tag runs {n_models} fold "
              f"model(s), plain one; default TTA = {n_views} views")
        rows = {
            "tag": time_tag(run, paths, False, bs, workers, tmp / "cache_tag"),
            "plain": plain_loop(model, pre, paths, 1, bs, workers, device),
            "tag_tta": time_tag(run, paths, True, bs, workers, tmp / "cache_tag_tta"),
            "plain_tta": plain_loop(model, pre, paths, n_views, bs, workers, device),
        }
    print(f"\n{'img/s':28} {'no TTA':>10} {f'TTA ({n_views} views)':>16}")
    print(f"{'fashiontag tag':28} {rows['tag']:10.1f} {rows['tag_tta']:16.1f}")
    print(f"{'plain timm eval loop':28} {rows['plain']:10.1f} {rows['plain_tta']:16.1f}")
    print(f"{'tag / plain':28} {rows['tag'] / rows['plain']:10.2f} {rows['tag_tta'] / rows['plain_tta']:16.2f}")
    if n_models > 1:
        print(f"(tag ran {n_models} fold models per image, plain one: per model, tag is {n_models}x the figure above)")
