"""Throughput benchmark: the bare model (the limit) vs the project's pipeline vs a plain DataLoader loop.

Each measured setup is what training runs: CONFIG.yaml:SIZE[:BATCH] takes the backbone, batch size, workers,
precision, channels_last, augmentation, optimizer and image-cache size from that config (the GPU default:
configs/fashionai_resnext101.yaml at 224 and 512 px, configs/clothing_lite0.yaml at 224 px); a plain
backbone:size[:batch] uses configs/base.yaml's settings. For each it measures, in one run on one device
(scripts/bench_steps.py), after a warm-up longer than the workers' prefetch:
  train  (a) bare:    optimizer steps on synthetic tensors already on the device
         (b) project: fashiontag's uint8 image cache + fastai batch transforms on the device + Learner
             (and "loader": that input pipeline alone, no model: its ceiling)
         (c) plain:   torchvision-style DataLoader decoding JPEGs with PIL + a plain timm loop
  infer  (a) bare eval forward on synthetic tensors, (b) the project's default TTA (views/s),
         (c) a plain timm eval loop over decoded JPEGs
and prints img/s and each ratio to (a). On a CPU it runs a small version and says so.

    .venv/bin/python scripts/bench.py                      # auto: GPU set (200 timed batches) on CUDA, small on CPU
    .venv/bin/python scripts/bench.py --models configs/fashionai_resnext101.yaml:512 --columns bare project
    .venv/bin/python scripts/bench.py --models efficientnet_lite0:224:256 --batches 50
    .venv/bin/python scripts/bench.py --profile --compile --out bench.json   # + where time goes, + torch.compile
    .venv/bin/python scripts/bench.py --tag   # `fashiontag tag` vs a plain timm eval loop (scripts/bench_tag.py)

Images: --images DIR, else photo-like JPEGs generated at 512 x 512 (the FashionAI size) into a temp folder;
they are decoded once into the image cache and the training rows repeat them so that one epoch holds the
warm-up and every timed batch.
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

from fashiontag.core.devices import describe_device, resolve_device, tune_kernels
from fashiontag.core.files import atomic_write_json
from fashiontag.core.logs import setup_logging
from fashiontag.data.images import is_image_file

log = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parents[1]
GPU_MODELS = ["configs/fashionai_resnext101.yaml:224", "configs/fashionai_resnext101.yaml:512",
              "configs/clothing_lite0.yaml:224"]
CPU_MODELS = ["efficientnet_lite0:96:16"]
COLUMNS = ["bare", "loader", "project", "compiled", "plain", "bare_inf", "tta_inf", "plain_inf"]
GPU_BATCHES, CPU_BATCHES = 200, 4


def parse_spec(spec: str, default_bs: int) -> tuple[str, int, int]:
    """backbone:size[:batch] (or CONFIG.yaml:size[:batch]) -> (backbone or config, size, batch; 0 = the
    config's batch)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts[1:]):
        raise SystemExit(f"--models takes backbone:size[:batch] or CONFIG.yaml:size[:batch], got {spec!r}")
    return parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else default_bs


def is_config(name: str) -> bool:
    return name.endswith((".yaml", ".yml"))


def config_path(name: str) -> str:
    """A config named relative to the working directory, else to the repository root."""
    return name if Path(name).exists() or not (ROOT / name).exists() else str(ROOT / name)


def make_setup(spec: str, args, device: torch.device) -> steps.Setup:
    """What one spec measures: a config's own settings, or base.yaml's with this backbone."""
    gpu = device.type == "cuda"
    name, size, batch = parse_spec(spec, 0)
    if is_config(name):
        return steps.setup_from_config(config_path(name), size, device, batch=batch or args.batch_size,
                                       workers=args.workers)
    workers = args.workers if args.workers is not None else (12 if gpu else 0)
    return steps.setup_from_config(None, size, device, batch=batch or args.batch_size or (128 if gpu else 16),
                                   workers=workers, backbone=name)


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


def enough(paths: list[str], bs: int, n: int, workers: int = 0) -> list[str]:
    """Repeat the list until one epoch holds the warm-up (+3 for --compile) and timed batches: a short list
    would make no full batch, or time an epoch boundary (and its validation pass) inside the timed window."""
    need = bs * (n + steps.warmup_batches(n, workers) + 4)
    return (paths * (need // len(paths) + 1))[: max(need, len(paths))]


def guarded(fn: Callable[[], float], name: str, device: torch.device) -> float:
    """Run one measurement; an out-of-memory batch size is reported as nan instead of ending the run."""
    try:
        return fn()
    except torch.cuda.OutOfMemoryError:
        log.warning("%s: out of GPU memory at this batch size; pass CONFIG:size:batch with a smaller batch", name)
        return float("nan")
    finally:
        steps.free(device)


def measure(s: steps.Setup, args, device: torch.device, paths: list[str], tmp: Path) -> dict:
    gpu = device.type == "cuda"
    n = args.batches or (GPU_BATCHES if gpu else CPU_BATCHES)
    files = enough(paths, s.batch, n, s.workers)
    cache = tmp / "cache"
    r: dict = {"model": s.label, "batch": s.batch, "batches": n, "warmup": steps.warmup_batches(n, s.workers),
               "workers": s.workers, "cache_size": s.cache_size, "precision": s.precision,
               "optimizer": s.train.get("optimizer", "adam")}
    run = {
        "bare": lambda: steps.bare_train(s, n, device),
        "loader": lambda: steps.loader_rate(s, n, paths, cache, device),
        "project": lambda: steps.project_train(s, n, paths, cache, device),
        "compiled": lambda: steps.project_train(s, n, paths, cache, device, True),
        "plain": lambda: steps.plain_loop(s, n, files, device, train=True),
        "bare_inf": lambda: steps.bare_infer(s, n, device),
        "tta_inf": lambda: steps.project_tta(s, paths, cache, device),
        "plain_inf": lambda: steps.plain_loop(s, n, files, device, train=False),
    }
    wanted = args.columns or [c for c in COLUMNS if c != "compiled" or args.compile]
    for name, fn in run.items():
        if name not in wanted:
            continue
        r[name] = guarded(fn, f"{r['model']} {name}", device)
        log.info("%s %s: %.1f img/s", r["model"], name, r[name])
    if args.profile:
        prof = steps.step_breakdown(s, n, paths, cache, device)
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
        if not np.isfinite(r[k]):
            return "OOM"
        return f"{r[k]:.1f} ({r[k] / r[base]:.0%})" if base in r and np.isfinite(r[base]) else f"{r[k]:.1f}"

    def plain(r: dict, k: str) -> str:
        return "-" if k not in r else (f"{r[k]:.1f}" if np.isfinite(r[k]) else "OOM")

    head = ["model", "batch", "train bare", "loader", "project", "compiled", "plain", "infer bare", "TTA views/s",
            "plain infer"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["model"], str(r["batch"]), plain(r, "bare"), cell(r, "loader", "bare"), cell(r, "project", "bare"),
            cell(r, "compiled", "bare"), cell(r, "plain", "bare"), plain(r, "bare_inf"),
            cell(r, "tta_inf", "bare_inf"), cell(r, "plain_inf", "bare_inf")]) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*",
                    help="CONFIG.yaml:size[:batch] or backbone:size[:batch] (default: the GPU or the CPU set)")
    ap.add_argument("--columns", nargs="*", choices=COLUMNS, default=None,
                    help="measure only these (default: all; compiled only with --compile)")
    ap.add_argument("--images", help="folder of JPEGs (default: generated photo-like 512 px JPEGs)")
    ap.add_argument("--n-images", type=int, default=None, help="generated images (default: 2048 GPU, 64 CPU)")
    ap.add_argument("--batch-size", type=int, default=None, help="batch for specs that name none (configs: theirs)")
    ap.add_argument("--batches", type=int, default=None,
                    help=f"timed batches per measurement (default: {GPU_BATCHES} GPU, {CPU_BATCHES} CPU)")
    ap.add_argument("--workers", type=int, default=None,
                    help="DataLoader workers (default: the config's train.num_workers; backbone specs 12 GPU, 0 CPU)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (as train.device)")
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
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Every setup of `args`; prints the table and returns {device, torch, rows} (also written to --out)."""
    from fashiontag.core.errors import FashiontagError

    try:
        device = resolve_device(args.device, setting="--device")  # an unusable GPU stops here, with the reason
    except FashiontagError as exc:
        raise SystemExit(str(exc)) from None
    tune_kernels(device)  # what training switches on (cudnn autotuning on CUDA)
    gpu = device.type == "cuda"
    name = describe_device(device)
    print(f"device: {name}" + ("" if gpu else " -- SMALL version; the GPU targets need a CUDA device"))
    setups = [make_setup(spec, args, device) for spec in (args.models or (GPU_MODELS if gpu else CPU_MODELS))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = find_images(args.images, Path(tmp), args.n_images or (2048 if gpu else 64))
        for s in setups:
            rows.append(measure(s, args, device, paths, Path(tmp)))
    print("\nimg/s (ratio to the bare model on synthetic tensors; TTA counts view-images)")
    print(table(rows))
    result = {"device": name, "torch": torch.__version__, "rows": rows}
    if args.out:
        atomic_write_json(args.out, result)
    return result


def main() -> None:
    args = parse_args()
    setup_logging()
    torch.manual_seed(0)
    if args.tag:
        from bench_tag import run_tag_bench

        run_tag_bench(args)
        return
    run(args)


if __name__ == "__main__":
    main()
