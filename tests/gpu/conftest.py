"""The GPU tier's data and reference run: the generated demo data (one key) and fold 0 of the demo recipe
trained once on the GPU, uninterrupted (the resume test compares against it; predict, stack and tag use it)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from helpers.gpu import DEVICE, KEY, train_child


@pytest.fixture(scope="package")
def gpu_world(tmp_path_factory):
    if DEVICE == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (torch.cuda.is_available() is False)")
    from fashiontag.synth.demo import make_demo_data

    tmp = tmp_path_factory.mktemp("gpu")
    make_demo_data(tmp / "demo", n_train=36, n_test=12, size=128, keys=[KEY])
    root = tmp / "demo" / "train"
    proc = train_child(root, tmp, "ref")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return SimpleNamespace(tmp=tmp, root=root, test=tmp / "demo" / "test", run=tmp / "runs" / "ref",
                           fold=tmp / "runs" / "ref" / KEY / "fold_0")
