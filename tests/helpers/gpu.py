"""The GPU tier's shared pieces (tests/gpu/): the skip marker, the demo recipe on CUDA, and a child process
that trains it deterministically (optionally SIGKILLed at a given batch).

FASHIONTAG_GPU_TIER_DEVICE=cpu rehearses the whole tier on the CPU (fp32, gloo) to check the tests themselves
where no GPU is at hand; the tier proper runs on cuda."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

DEVICE = os.environ.get("FASHIONTAG_GPU_TIER_DEVICE", "cuda")
# What the tier expects on its device: bf16 on the GPU (the CPU always trains fp32), NCCL vs gloo.
EXPECT = {"cuda": {"precision": "bf16", "backend": "nccl", "ddp_log": "GPUs, backend nccl"},
          "cpu": {"precision": "fp32", "backend": "gloo", "ddp_log": "CPU, backend gloo"}}[DEVICE]
TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
DEMO = str(REPO / "configs" / "demo.yaml")
KEY = "skirt_length_labels"

requires_cuda = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                   reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
gpu_tier = [pytest.mark.gpu, requires_cuda]


def gpu_sets(tmp: Path, exp: str, *extra: str) -> list[str]:
    """The demo recipe on the GPU in bf16 + channels_last, with worker processes (persistent, pinned memory)
    and three training batches per epoch; every output under tmp."""
    return [f"exp={exp}", f"train.device={DEVICE}", "train.precision=bf16", "train.channels_last=true",
            "train.num_workers=2", "train.batch_size=8", "train.lr_find_iters=10", "train.progress=log",
            f"runs_dir={tmp / 'runs'}", f"cache.dir={tmp / 'cache'}", f"data.folds_dir={tmp / 'folds'}", *extra]


def train_child(root: Path, tmp: Path, exp: str, kill: str = "none", *extra: str,
                timeout: int = 300 if DEVICE == "cuda" else 1800) -> subprocess.CompletedProcess:
    """Fold 0 of the demo recipe in a child process (deterministic kernels where CUDA has them);
    kill="phase,epoch,batch" SIGKILLs it there."""
    env = {**os.environ, "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); from helpers.gpu import child_main; child_main()"
    return subprocess.run([sys.executable, "-c", code, str(root), kill, *gpu_sets(tmp, exp, *extra)],
                          capture_output=True, text=True, env=env, timeout=timeout)


def child_main() -> None:
    from fashiontag.core.config import load_config
    from fashiontag.core.logs import setup_logging
    from fashiontag.train.runner import train_run
    from helpers.interrupt import KillAt

    root, kill, *sets = sys.argv[1:]
    torch.use_deterministic_algorithms(True, warn_only=True)  # a few backward kernels have no exact variant
    torch.backends.cudnn.deterministic = True
    setup_logging()
    cbs = () if kill == "none" else (KillAt(*(int(v) for v in kill.split(",")), sigkill=True),)
    train_run(Path(root), "all", "0", load_config(DEMO, sets), extra_cbs=cbs)
