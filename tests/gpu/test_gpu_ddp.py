"""On a GPU: one fold through the whole DDP path in one process (FASHIONTAG_DDP=1): NCCL process group,
DistributedDataParallel model, DistributedDL loaders, batches on the GPU."""

from __future__ import annotations

import json

from helpers.ddp import run_one_process_ddp
from helpers.gpu import DEVICE, EXPECT, gpu_tier
from helpers.training import KEY, tiny_root

pytestmark = gpu_tier


def test_one_process_nccl_ddp_fold(tmp_path, make_fashionai_root):
    root = tiny_root(make_fashionai_root, tmp_path)
    sets = ["exp=nccl", f"train.device={DEVICE}", "train.precision=bf16", "train.num_workers=2"]
    proc, out = run_one_process_ddp(root, tmp_path, sets, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out["backend"] == EXPECT["backend"]
    assert ["DistributedDataParallel", "DistributedDL", DEVICE] in out["seen"]
    assert f"DDP: 1 processes ({EXPECT['ddp_log']})" in proc.stderr
    done = json.loads((tmp_path / "runs" / "nccl" / KEY / "fold_0" / "done.json").read_text())
    assert done["device"].startswith(DEVICE)
