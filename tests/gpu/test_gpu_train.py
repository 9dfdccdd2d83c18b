"""On a GPU: the demo recipe trains one fold in bf16 + channels_last; SIGKILLed mid-epoch and resumed it
ends at the uninterrupted run's weights; the feature-cache path trains on the GPU; during training steps no
tensor crosses devices and no device value is read back."""

from __future__ import annotations

import json
import signal

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.gpu import DEMO, DEVICE, EXPECT, KEY, gpu_sets, gpu_tier, train_child

pytestmark = gpu_tier


def test_fold_trains_in_bf16_channels_last_on_the_gpu(gpu_world):
    done = json.loads((gpu_world.fold / "done.json").read_text())
    assert done["device"].startswith(DEVICE) and done["precision"] == EXPECT["precision"]
    log = pd.read_csv(gpu_world.fold / "log.csv")
    assert len(log) == 8 and np.isfinite(log["train_loss"]).all()  # demo: 2 stages x (3 frozen + 1 unfrozen)
    assert f" {DEVICE}" in (gpu_world.fold / "train.log").read_text()  # the fold's log names its device


def test_sigkill_mid_epoch_then_resume_ends_at_the_uninterrupted_weights(gpu_world):
    tmp, root = gpu_world.tmp, gpu_world.root
    killed = train_child(root, tmp, "killed", "1,0,1")  # the 96 px unfrozen phase, second training batch
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    fold = tmp / "runs" / "killed" / KEY / "fold_0"
    assert (fold / "ckpt" / "last.pth").exists() and not (fold / "done.json").exists()
    resumed = train_child(root, tmp, "killed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = torch.load(gpu_world.fold / "model.pth", map_location="cpu")
    b = torch.load(fold / "model.pth", map_location="cpu")
    assert a.keys() == b.keys()
    # Deterministic kernels where CUDA has them (a few backward kernels accumulate atomically): the same
    # weights up to float rounding. Bit-exactness is tested on the CPU (tests/train/test_resume.py).
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-4, msg=lambda m, k=k: f"{k}: {m} (worst {worst})")
    ref, got = (pd.read_csv(d / "log.csv") for d in (gpu_world.fold, fold))
    np.testing.assert_allclose(got["train_loss"], ref["train_loss"], rtol=1e-3)


def test_feature_cache_path_trains_on_the_gpu(gpu_world):
    from fashiontag.core.config import load_config
    from fashiontag.train.runner import train_run

    tmp = gpu_world.tmp
    sets = gpu_sets(tmp, "features", "train.feature_cache=true", "train.stages=[128]", "train.frozen_epochs=2",
                    "train.unfrozen_epochs=0", "train.feature_views=3", "train.frozen_schedule=one_cycle")
    train_run(gpu_world.root, "all", "0", load_config(DEMO, sets))
    done = json.loads((tmp / "runs" / "features" / KEY / "fold_0" / "done.json").read_text())
    assert done["device"].startswith(DEVICE) and 0 <= done["metrics"]["accuracy"] <= 1
    assert len(list((tmp / "cache" / "features").glob("*.npy"))) == 3


def test_no_tensor_crosses_devices_in_a_training_step(gpu_world):
    """Every training batch after the first two, from before_batch to after_batch (forward, loss, backward,
    fused optimizer step, the callbacks' bookkeeping): no copy between devices, no mixed-device operation, no
    `.item()` of a device tensor."""
    from fastai.callback.core import Callback

    from fashiontag.core.config import load_config
    from fashiontag.train.runner import train_run
    from helpers.devices import DeviceCrossings

    class Watch:
        mode, events, batches = None, [], 0

    class Enter(Callback):
        order = -100

        def before_batch(self):
            Watch.batches += 1
            if self.training and Watch.batches > 2:
                Watch.mode = DeviceCrossings().__enter__()

    class Exit(Callback):
        order = 100

        def after_batch(self):
            if Watch.mode is not None:
                Watch.mode.__exit__(None, None, None)
                Watch.events += Watch.mode.events
                Watch.mode = None

    sets = gpu_sets(gpu_world.tmp, "crossings", "train.lr=1e-3", "train.lr_find=false", "train.stages=[96]")
    train_run(gpu_world.root, "all", "0", load_config(DEMO, sets), extra_cbs=(Enter(), Exit()))
    assert Watch.batches > 6
    assert not Watch.events, Watch.events[:20]


@pytest.fixture(autouse=True)
def _free_gpu():
    yield
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
