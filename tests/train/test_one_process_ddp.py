"""FASHIONTAG_DDP=1: a launch of one process takes the whole DDP path (process group, DistributedDataParallel
model, DistributedDL loaders) - how a single-GPU machine checks it with NCCL (tests/gpu/); here with gloo."""

from __future__ import annotations

import json

from helpers.ddp import run_one_process_ddp
from helpers.training import KEY, tiny_root


def test_one_process_ddp_trains_a_fold_through_ddp(tmp_path, make_fashionai_root):
    root = tiny_root(make_fashionai_root, tmp_path)
    sets = ["exp=ddp1", "train.device=cpu", "train.unfrozen_epochs=1"]
    proc, out = run_one_process_ddp(root, tmp_path, sets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out["backend"] == "gloo"
    assert ["DistributedDataParallel", "DistributedDL", "cpu"] in out["seen"]
    assert "DDP: 1 processes (CPU, backend gloo)" in proc.stderr
    done = json.loads((tmp_path / "runs" / "ddp1" / KEY / "fold_0" / "done.json").read_text())
    assert done["device"] == "cpu" and 0 <= done["metrics"]["accuracy"] <= 1
