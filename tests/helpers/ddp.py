"""A fold trained in a child process launched as ONE DDP process (torchrun's environment + FASHIONTAG_DDP=1):
the whole DDP path (process group, DistributedDataParallel, DistributedDL) on one CPU (gloo) or one GPU
(NCCL). The child prints what the training loop saw as its last stdout line (JSON)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from fastai.callback.core import Callback
from fashiontag.core.logs import setup_logging
from fashiontag.train.runner import train_run
from helpers.training import tiny_config

setup_logging()
seen = set()

class Probe(Callback):
    order = 90
    def before_batch(self):
        seen.add((type(self.learn.model).__name__, type(self.learn.dl).__name__, str(self.xb[0].device.type)))

train_run(Path({root!r}), "all", "0", tiny_config(Path({tmp!r}), *{sets!r}), extra_cbs=(Probe(),))
import torch
print(json.dumps({{"seen": sorted(seen), "backend": torch.distributed.get_backend()}}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_one_process_ddp(root: Path, tmp: Path, sets: list[str], timeout: int = 600
                        ) -> tuple[subprocess.CompletedProcess, dict | None]:
    """Train fold 0 of every key of `root` with helpers.training's tiny config + `sets`; (process, its JSON)."""
    env = {**os.environ, "WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "FASHIONTAG_DDP": "1",
           "OMP_NUM_THREADS": "1"}
    code = CHILD.format(tests=str(TESTS), root=str(root), tmp=str(tmp), sets=list(sets))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return proc, (json.loads(last) if last.startswith("{") else None)
