"""Throughput benchmark: the bare model (the limit) vs the project's pipeline vs a plain DataLoader loop.

For each backbone:size[:batch] it measures, in one run on one device (scripts/bench_steps.py):
  train  (a) bare:    optimizer steps on synthetic tensors already on the device
         (b) project: fashiontag's uint8 image cache + fastai batch transforms on the device + Learner
             (and "loader": that input pipeline alone, no model: its ceiling)
         (c) plain:   torchvision-style DataLoader decoding JPEGs with PIL + a plain timm loop
  infer  (a) bare eval forward on synthetic tensors, (b) the project's default TTA (views/s),
         (c) a plain timm eval loop over decoded JPEGs
and prints img/s and each ratio to (a). On a CPU it runs a small version and says so.

    .venv/bin/python scripts/bench.py                      # auto: GPU set on CUDA, small on CPU
    .venv/bin/python scripts/bench.py --models efficientnet_lite0:224:256 --batches 50
    .venv/bin/python scripts/bench.py --profile --compile --out bench.json   # + where time goes, + torch.compile
    .venv/bin/python scripts/bench.py --tag   # `fashiontag tag` vs a plain timm eval loop (scripts/bench_tag.py)

Images: --images DIR, else photo-like JPEGs generated at 512 x 512 (the FashionAI size) into a temp folder,
enough for every batch to be distinct within an epoch.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import bench_steps as steps  # scripts/ is on sys.path when this file runs
import numpy as np
import torch
from PIL import Image

from fashiontag.core.files import atomic_write_json
from fashiontag.core.logs import setup_logging
from fashiontag.data.images import is_image_file

log = logging.getLogger("bench")
GPU_MODELS = ["resnext101_32x8d:224:128", "resnext101_32x8d:512:32", "efficientnet_lite0:224:256"]
CPU_MODELS = ["efficientnet_lite0:96:16"]
COLUMNS = ["bare", "loader", "project", "compiled", "plain", "bare_inf", "tta_inf", "plain_inf"]


def parse_spec(spec: str, default_bs: int) -> tuple[str, int, int]:
    """backbone:size[:batch] -> (backbone, size, batch)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts[1:]):
        raise SystemExit(f"--models takes backbone:size[:batch], got {spec!r}")
    return parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else default_bs


def photo_like_jpegs(dst: Path, n: int, size: int = 512, seed: int = 0) -> list[str]:
    """n distinct JPEGs that compress like product photos (smooth shapes on a plain background, mild
    noise), so decoding costs what a real photo of that size costs."""
    rng = np.random.default_rng(seed)
    dst.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    paths = []
    for i in range(n):
        img = np.full((size, size, 3), rng.uniform(180, 250), np.float32)
        for _ in range(3):
            cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.35)
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
            img = img * (1 - blob) + blob * rng.uniform(0, 255, 3)
        img += rng.normal(0, 6, img.shape)
        path = dst / f"bench_{i:05d}.jpg"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


def find_images(src: str | None, tmp: Path, n: int) -> list[str]:
    if src:
        paths = sorted(str(p) for p in Path(src).rglob("*") if is_image_file(p))
        if not paths:
            raise SystemExit(f"no images found in {src}")
        return paths
    log.info("generating %d photo-like 512 px JPEGs", n)
    return photo_like_jpegs(tmp / "images", n)


def enough(paths: list[str], bs: int, n: int) -> list[str]:
    """Repeat the list until one epoch holds the warm-up (+3 for --compile) and timed batches: a short list
    would make no full batch, or time an epoch boundary (and its validation pass) inside the timed window."""
    need = bs * (n + steps.warmup_batches(n) + 4)
    return (paths * (need // len(paths) + 1))[: max(need, len(paths))]


def guarded(fn: Callable[[], float], name: str, device: torch.device) -> float:
    """Run one measurement; an out-of-memory batch size is reported as nan instead of ending the run."""
    try:
        return fn()
    except torch.cuda.OutOfMemoryError:
        log.warning("%s: out of GPU memory at this batch size; pass backbone:size:batch with a smaller batch", name)
        return float("nan")
    finally:
        steps.free(device)


def measure(spec: str, args, device: torch.device, paths: list[str], tmp: Path) -> dict:
    gpu = device.type == "cuda"
    backbone, size, bs = parse_spec(spec, args.batch_size or (128 if gpu else 16))
    n = args.batches or (30 if gpu else 4)
    workers = args.workers if args.workers is not None else (12 if gpu else 0)
    files = enough(paths, bs, n)
    cache = tmp / "cache"
    r: dict = {"model": f"{backbone}@{size}", "batch": bs, "batches": n, "workers": workers}
    run = {
        "bare": lambda: steps.bare_train(backbone, size, bs, n, device),
        "loader": lambda: steps.loader_rate(size, bs, n, files, cache, device, workers),
        "project": lambda: steps.project_train(backbone, size, bs, n, files, cache, device, workers),
        "compiled": lambda: steps.project_train(backbone, size, bs, n, files, cache, device, workers, True),
        "plain": lambda: steps.plain_loop(backbone, size, bs, n, files, device, workers, train=True),
        "bare_inf": lambda: steps.bare_infer(backbone, size, bs, n, device),
        "tta_inf": lambda: steps.project_tta(backbone, size, bs, files[: bs * n], cache, device),
        "plain_inf": lambda: steps.plain_loop(backbone, size, bs, n, files, device, workers, train=False),
    }
    for name, fn in run.items():
        if name == "compiled" and not args.compile:
            continue
        r[name] = guarded(fn, f"{r['model']} {name}", device)
        log.info("%s %s: %.1f img/s", r["model"], name, r[name])
    if args.profile:
        prof = steps.step_breakdown(backbone, size, bs, n, files, cache, device, workers)
        r["profile"] = {k: v for k, v in prof.items() if k != "top_ops"}
        print(f"\n{r['model']}: project training loop, {n} batches synchronised at each boundary: input side "
              f"{prof['data_s']:.2f} s, step {prof['step_s']:.2f} s ({prof['data_share']:.0%} waiting for input)")
        print(prof["top_ops"])
        r["profile"]["top_ops"] = prof["top_ops"]
        steps.free(device)
    return r


def table(rows: list[dict]) -> str:
    def cell(r: dict, k: str, base: str) -> str:
        if k not in r:
            return "-"
        return f"{r[k]:.1f} ({r[k] / r[base]:.0%})" if np.isfinite(r[k]) and np.isfinite(r[base]) else "OOM"

    head = ["model", "batch", "train bare", "loader", "project", "compiled", "plain", "infer bare", "TTA views/s",
            "plain infer"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["model"], str(r["batch"]), f"{r['bare']:.1f}", cell(r, "loader", "bare"), cell(r, "project", "bare"),
            cell(r, "compiled", "bare"), cell(r, "plain", "bare"), f"{r['bare_inf']:.1f}",
            cell(r, "tta_inf", "bare_inf"), cell(r, "plain_inf", "bare_inf")]) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", help="backbone:size[:batch] (default: the GPU or the CPU set)")
    ap.add_argument("--images", help="folder of JPEGs (default: generated photo-like 512 px JPEGs)")
    ap.add_argument("--n-images", type=int, default=None, help="generated images (default: 2048 GPU, 64 CPU)")
    ap.add_argument("--batch-size", type=int, default=None, help="batch for specs that name none")
    ap.add_argument("--batches", type=int, default=None, help="timed batches per measurement")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: 12 GPU, 0 CPU)")
    ap.add_argument("--compile", action="store_true", help="also time the project pipeline with train.compile")
    ap.add_argument("--profile", action="store_true",
                    help="also profile the project training loop: input wait vs step, torch.profiler top ops")
    ap.add_argument("--out", default=None, help="write the figures (and profiles) to this JSON file")
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
        from bench_tag import run_tag_bench

        run_tag_bench(args)
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.type == "cuda"
    models = args.models or (GPU_MODELS if gpu else CPU_MODELS)
    if gpu:
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name()
        print(f"device: {name}, torch {torch.__version__}")
    else:
        name = f"CPU ({torch.get_num_threads()} threads)"
        print(f"device: {name}, torch {torch.__version__} -- SMALL version; the GPU targets need a CUDA device")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = find_images(args.images, Path(tmp), args.n_images or (2048 if gpu else 64))
        for spec in models:
            rows.append(measure(spec, args, device, paths, Path(tmp)))
    print("\nimg/s (ratio to the bare model on synthetic tensors; TTA counts view-images)")
    print(table(rows))
    if args.out:
        atomic_write_json(args.out, {"device": name, "torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()
