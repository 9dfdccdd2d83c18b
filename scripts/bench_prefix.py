"""Throughput of the frozen prefix that fills the activation cache (train.trainable_stages): eager vs
torch.compile (train.compile_prefix) at several batch sizes (train.prefix_batch_size), side by side in one run.

The prefix is the project's own cut (models/partial.split_body) of the body built as training builds it
(random weights: the speed does not depend on them), in eval mode and channels_last as the activation pass
runs it, through `PrefixRunner`. Inputs are random images of the body's size; decoding is not timed. For each
setting: the first call (for compiled runs: the compilation) and the median img/s of --reps timed passes over
--images images.

    .venv/bin/python scripts/bench_prefix.py                                    # Lite0 224 and Lite1 240
    .venv/bin/python scripts/bench_prefix.py --bodies efficientnet_lite1:240 --batch-sizes 4 8 64 --out p.json
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch

from fashiontag.core.files import atomic_write_json
from fashiontag.core.logs import setup_logging
from fashiontag.models.build import build_model
from fashiontag.models.partial import PrefixRunner, split_body

log = logging.getLogger("bench_prefix")


def time_setting(prefix: torch.nn.Module, size: int, bs: int, compile: bool, images: int, reps: int) -> dict:
    runner = PrefixRunner(prefix, bs, compile)
    x = torch.randn(bs, 3, size, size, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    n_batches = max(1, images // bs)
    with torch.inference_mode():
        t0 = time.perf_counter()
        runner(x)
        first = time.perf_counter() - t0
        rates = []
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(n_batches):
                runner(x)
            rates.append(n_batches * bs / (time.perf_counter() - t0))
    if compile and runner.compiled is None:
        raise RuntimeError("torch.compile failed (see the warning above): nothing compiled was timed")
    return {"first_call_s": round(first, 2), "img_per_s": round(statistics.median(rates), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bodies", nargs="+", default=["efficientnet_lite0:224", "efficientnet_lite1:240"],
                    help="backbone:size pairs")
    ap.add_argument("--trainable-stages", type=int, default=1, help="the cut, as train.trainable_stages")
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[4, 8, 16, 64])
    ap.add_argument("--images", type=int, default=128, help="images per timed pass")
    ap.add_argument("--reps", type=int, default=3, help="timed passes per setting (median reported)")
    ap.add_argument("--no-compile", action="store_true", help="eager only")
    ap.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    setup_logging()
    torch.manual_seed(0)
    rows = []
    for spec in args.bodies:
        backbone, size = spec.split(":")[0], int(spec.split(":")[1])
        model, _ = build_model(backbone, 10, {"hidden": [], "dropout": 0.0, "pool": "avg"}, {"pretrained": False})
        prefix = split_body(model[0], args.trainable_stages).prefix.eval().to(memory_format=torch.channels_last)
        for compile in [False] if args.no_compile else [False, True]:
            for bs in args.batch_sizes:
                torch._dynamo.reset()  # each compiled setting compiles from scratch for its own shape
                r = time_setting(prefix, size, bs, compile, args.images, args.reps)
                rows.append({"body": backbone, "size": size, "mode": "compiled" if compile else "eager",
                             "batch_size": bs, **r})
                log.info("%s %d px %s batch %d: %.1f img/s (first call %.1f s)", backbone, size, rows[-1]["mode"],
                         bs, r["img_per_s"], r["first_call_s"])
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, prefix = all but the last "
          f"{args.trainable_stages} stage(s)\n")
    print("| body | px | mode | batch | img/s | first call s |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['body']} | {r['size']} | {r['mode']} | {r['batch_size']} | {r['img_per_s']:.1f} | "
              f"{r['first_call_s']:.1f} |")
    if args.out:
        atomic_write_json(args.out, {"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows})


if __name__ == "__main__":
    main()
