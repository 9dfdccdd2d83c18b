"""Time one optimizer step over a real model's parameter list: fastai's own Adam/SGD (what training used
before) vs torch's AdamW/SGD behind fastai's OptimWrapper (train/optim.py), foreach and fused.

The model is the project's (timm body + seed head, three layer groups, weight decay off for norm weights
and biases); every parameter gets a fixed random gradient, as after an unfrozen backward pass. Only the step
is timed (median of --steps after 2 warm-up steps), on the CPU unless --device says otherwise; no data, no
forward or backward. Both the wall time and this process's CPU time (all its threads: what the step costs the
machine, and less sensitive than wall time to other jobs on a shared box) are reported.

    .venv/bin/python scripts/bench_optim.py                         # resnext101_32x8d, CPU
    .venv/bin/python scripts/bench_optim.py --backbone efficientnet_lite0 --steps 20 --out optim.json
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import time

import torch
from fastai.optimizer import SGD, Adam
from fastai.torch_core import norm_bias_params

from fashiontag.core.files import atomic_write_json
from fashiontag.core.logs import setup_logging
from fashiontag.models.build import build_model
from fashiontag.train.learner import three_group_splitter
from fashiontag.train.optim import make_opt_func

log = logging.getLogger("bench_optim")
HEAD = {"hidden": [512, 512], "dropout": 0.25, "pool": "avg"}


def fastai_opt(kind: str, model, lr: float):
    """What make_learner built before: fastai's Optimizer, BN/bias weight decay off as Learner.create_opt does."""
    func = Adam if kind == "adam" else (lambda ps, lr: SGD(ps, lr, mom=0.9))
    opt = func(three_group_splitter(model), lr=lr)
    opt.set_hypers(wd=0.01)
    for p in norm_bias_params(model, with_bias=True):
        opt.state[p]["do_wd"] = False
    return opt


def torch_opt(kind: str, model, lr: float, device: torch.device, impl: str):
    opt = make_opt_func(kind, model, device)(three_group_splitter(model), lr=lr)
    for group in opt.opt.param_groups:  # force the implementation under test
        group["fused"], group["foreach"] = impl == "fused", impl == "foreach"
    opt.set_hypers(wd=0.01)
    return opt


def time_steps(opt, steps: int, device: torch.device) -> tuple[float, float]:
    """Median (wall, process CPU) seconds of one opt.step() after 2 warm-up steps (which also allocate the
    optimizer state)."""
    wall, cpu = [], []
    for i in range(steps + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="resnext101_32x8d")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per optimizer (median reported)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--kinds", nargs="*", default=["adam", "sgd"])
    ap.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    setup_logging()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model, _ = build_model(args.backbone, 10, HEAD, {"pretrained": False})
    model.to(device)
    params = [p for p in model.parameters()]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    n = sum(p.numel() for p in params)
    print(f"{args.backbone}: {len(params)} parameter tensors, {n / 1e6:.1f} M parameters, device {device} "
          f"({torch.get_num_threads()} threads), torch {torch.__version__}")
    rows = []
    for kind in args.kinds:
        variants = {"fastai": lambda k=kind: fastai_opt(k, model, 1e-4),
                    "torch foreach": lambda k=kind: torch_opt(k, model, 1e-4, device, "foreach"),
                    "torch fused": lambda k=kind: torch_opt(k, model, 1e-4, device, "fused")}
        for name, build in variants.items():
            opt = build()
            wall, cpu = time_steps(opt, args.steps, device)
            rows.append({"optimizer": kind, "implementation": name, "wall_ms": round(wall * 1e3, 1),
                         "cpu_ms": round(cpu * 1e3, 1)})
            log.info("%s %s: %.1f ms/step wall, %.1f ms CPU", kind, name, wall * 1e3, cpu * 1e3)
            del opt
            gc.collect()
    print("\n| optimizer | implementation | wall ms/step | CPU ms/step | CPU time: fastai / this |\n|---|---|---|---|---|")
    for r in rows:
        base = next(b for b in rows if b["optimizer"] == r["optimizer"] and b["implementation"] == "fastai")
        print(f"| {r['optimizer']} | {r['implementation']} | {r['wall_ms']:.1f} | {r['cpu_ms']:.1f} | "
              f"{base['cpu_ms'] / r['cpu_ms']:.2f}x |")
    if args.out:
        atomic_write_json(args.out, {"backbone": args.backbone, "tensors": len(params), "params": n,
                                     "device": str(device), "threads": torch.get_num_threads(),
                                     "torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()
