"""Resume is exact: a fold interrupted anywhere (Ctrl-C between epochs, SIGKILL mid-epoch, frozen or unfrozen
phase, across a progressive-resizing stage change) and resumed ends with the same weights, bit for bit, and
the same out-of-fold file as the uninterrupted run (CPU, one thread)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from fashiontag.train.resume import ckpt_path
from fashiontag.train.runner import train_run
from helpers.interrupt import KillAt
from helpers.training import tiny_config

KEY = "skirt_length_labels"
# Two stages (32 -> 48 px), each a 1-epoch frozen SGDR phase and a 2-epoch unfrozen one-cycle phase, BnFreeze
# as in the demo recipe: phases 0..3, 6 epochs, 3 training batches of 2 images each.
RECIPE = ("train.stages=[32, 48]", "train.frozen_epochs=1", "train.frozen_schedule=sgdr", "train.unfrozen_epochs=2",
          "train.schedule=one_cycle", "train.train_bn=false", "train.batch_size=2", "train.checkpoint_every_s=0")
TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The demo data's layout (12 images), and the fold trained without interruption."""
    from fashiontag.synth.demo import make_demo_data

    tmp = tmp_path_factory.mktemp("resume")
    make_demo_data(tmp / "demo", n_train=12, n_test=1, size=32, keys=[KEY])
    root = tmp / "demo" / "train"
    train_run(root, "all", "0", tiny_config(tmp, "exp=ref", *RECIPE))
    return tmp, root


def fold_dir(tmp: Path, exp: str) -> Path:
    return tmp / "runs" / exp / KEY / "fold_0"


def assert_same_as_reference(tmp: Path, exp: str) -> None:
    ref, got = fold_dir(tmp, "ref"), fold_dir(tmp, exp)
    a, b = torch.load(ref / "model.pth"), torch.load(got / "model.pth")
    a, b = a.get("state_dict", a), b.get("state_dict", b)
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} tensors differ from the uninterrupted run, e.g. {differ[:3]}"
    assert (got / "oof.csv").read_bytes() == (ref / "oof.csv").read_bytes()
    cols = ["epoch", "phase", "train_loss", "valid_loss", "accuracy", "train_accuracy", "lr"]
    pd.testing.assert_frame_equal(pd.read_csv(got / "log.csv")[cols], pd.read_csv(ref / "log.csv")[cols])
    assert not (got / "ckpt").exists()


def interrupt_then_resume(tmp: Path, root: Path, exp: str, at: KillAt, *extra: str) -> dict:
    cfg = (f"exp={exp}", *RECIPE, *extra)
    with pytest.raises(KeyboardInterrupt):
        train_run(root, "all", "0", tiny_config(tmp, *cfg), extra_cbs=(at,))
    ckpt = torch.load(ckpt_path(fold_dir(tmp, exp)), weights_only=False)
    train_run(root, "all", "0", tiny_config(tmp, *cfg))
    return ckpt["state"]


@pytest.mark.parametrize("exp, at, resumes_at", [
    # Ctrl-C between the two epochs of the unfrozen phase: Adam's moments and step counts carry on.
    ("unfrozen_between_epochs", KillAt(1, 0), (1, 1)),
    # Ctrl-C at the stage change: then the 48 px frozen SGDR phase, after a one-cycle phase (the momentum it
    # left, the body's zero gradients that weight decay still acts on, a new stage's loaders).
    ("stage_change", KillAt(1, 1), (1, 2)),
])
def test_interrupted_fold_resumes_exactly(world, exp, at, resumes_at):
    tmp, root = world
    state = interrupt_then_resume(tmp, root, exp, at)
    assert (state["phase"], state["epochs_done"]) == resumes_at
    assert_same_as_reference(tmp, exp)


def test_default_cadence_keeps_phase_ends_and_resumes_exactly(world):
    """With an interval longer than the run only phase ends are saved: Ctrl-C mid-epoch of the second
    stage's frozen phase goes back to the end of the first stage."""
    tmp, root = world
    state = interrupt_then_resume(tmp, root, "cadence", KillAt(2, 0, batch=1), "train.checkpoint_every_s=600")
    assert (state["phase"], state["epochs_done"]) == (1, 2), "the last checkpoint closed phase 1"
    assert_same_as_reference(tmp, "cadence")


def test_sigkill_mid_epoch_then_resume_is_exact(world):
    """A real SIGKILL in a subprocess, mid-epoch in the second stage's unfrozen phase (both stages' loaders
    and the phase's optimizer moments in the checkpoint), then the same training again."""
    tmp, root = world
    sets = ["exp=killed", *RECIPE]
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); from helpers.interrupt import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, str(root), str(tmp), "3", "1", "1", *sets],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    state = torch.load(ckpt_path(fold_dir(tmp, "killed")), weights_only=False)["state"]
    assert (state["phase"], state["epochs_done"]) == (3, 1)
    train_run(root, "all", "0", tiny_config(tmp, *sets))
    assert_same_as_reference(tmp, "killed")
