"""End to end on tiny data: the run directory, skipping and merging folds, progressive resizing, resume."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from fastai.callback.core import Callback

from fashiontag.cli import main
from fashiontag.core.errors import FashiontagError
from fashiontag.data import loaders as tdata
from fashiontag.fashionai.probs import probs_of
from fashiontag.models.build import load_fold_model
from fashiontag.train.runner import train_run
from helpers.training import KEY, tiny_config, tiny_overrides, tiny_root

FOLD_FILES = ["config.yaml", "preprocess.json", "model.pth", "log.csv", "lr_find.png", "curves.png",
              "confusion.png", "oof.csv", "train.log", "done.json"]


def test_train_writes_the_run_directory_and_prediction_needs_only_it(tmp_path, make_fashionai_root):
    root = tiny_root(make_fashionai_root, tmp_path)
    args = ["train", "--data", str(root), "--cat", "garment_type", "--folds", "0", "--exp", "tiny"]
    sets = [a for s in tiny_overrides(tmp_path, "train.lr=auto", "train.lr_find=true", "train.lr_find_iters=6")
            for a in ("--set", s)]
    assert main(args + sets) == 0
    key_dir = tmp_path / "runs" / "tiny" / KEY
    fold_dir = key_dir / "fold_0"
    for name in FOLD_FILES:
        assert (fold_dir / name).is_file(), name
    assert not (fold_dir / "ckpt").exists(), "the resume checkpoint is removed when the fold is done"
    assert (tmp_path / "folds" / "data_train.csv").is_file() and (key_dir / "folds.csv").is_file()

    log = pd.read_csv(fold_dir / "log.csv")
    assert log["phase"].tolist() == ["stage0_32px_frozen", "stage0_32px_unfrozen"]
    assert log["epoch"].tolist() == [1, 2] and log[["train_loss", "valid_loss", "accuracy"]].notna().all().all()
    done = json.loads((fold_dir / "done.json").read_text())
    assert done["lr_source"].startswith("lr_find") and done["lr"] > 0
    assert done["weights"].startswith("random init") and done["precision"] == "fp32"
    assert set(done["metrics"]) >= {"mAP", "accuracy", "log_loss", "basic_precision"}

    oof = pd.read_csv(fold_dir / "oof.csv")
    folds = pd.read_csv(key_dir / "folds.csv")
    assert sorted(oof["image"]) == sorted(folds.loc[folds["fold"] == 0, "image"])
    assert list(oof.columns[:4]) == ["image", "key", "fold", "label"]
    np.testing.assert_allclose(probs_of(oof, 3).sum(axis=1), 1.0, atol=1e-9)
    cv = json.loads((key_dir / "cv.json").read_text())
    assert cv["complete"] is False and cv["folds_done"] == [0] and cv["n"] == len(oof)

    # The fold dir alone rebuilds the model and reproduces the out-of-fold probabilities.
    model, pre = load_fold_model(fold_dir)
    assert pre["values"] == ["coat", "dress", "shirt"] and pre["size"] == 32 and pre["key"] == KEY
    dl = tdata.test_dataloader([root / p for p in oof["image"]], pre, batch_size=4, device="cpu")
    with torch.no_grad():
        probs = torch.cat([torch.softmax(model(b[0]), 1) for b in dl]).numpy()
    np.testing.assert_allclose(probs, probs_of(oof, 3), atol=1e-4)


def test_folds_are_skipped_when_done_then_merged(tmp_path, make_fashionai_root, caplog):
    root = tiny_root(make_fashionai_root, tmp_path)
    cfg = tiny_config(tmp_path, "exp=merge")
    before = copy.deepcopy(cfg)
    train_run(root, "all", "0", cfg)
    assert cfg == before, "train_run works on its own copy of the config"
    key_dir = tmp_path / "runs" / "merge" / KEY
    stamp = (key_dir / "fold_0" / "done.json").stat().st_mtime_ns
    result = train_run(root, "all", "all", tiny_config(tmp_path, "exp=merge"))
    assert result.run_dir == key_dir.parent
    assert (key_dir / "fold_0" / "done.json").stat().st_mtime_ns == stamp, "a done fold is not retrained"
    cv = result.cv[KEY]
    assert cv["complete"] is True and cv["folds_done"] == [0, 1] and cv["n"] == 12
    oof = pd.read_csv(key_dir / "oof.csv")
    assert len(oof) == 12 and set(oof["fold"]) == {0, 1} and not oof["image"].duplicated().any()

    with pytest.raises(FashiontagError, match="different config.*train.weight_decay"):
        train_run(root, "all", "0", tiny_config(tmp_path, "exp=merge", "train.weight_decay=0.1"))
    train_run(root, "all", "0", tiny_config(tmp_path, "exp=merge", "train.weight_decay=0.1", "train.force=true"))
    assert (key_dir / "fold_0" / "done.json").stat().st_mtime_ns != stamp


class Snapshots(Callback):
    """Weights at the start and end of every fit (phase), and the image size of its first batch."""

    order = 90

    def __init__(self):
        self.starts, self.ends, self.sizes = [], [], []

    def before_fit(self):
        self.starts.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        self._seen = False

    def before_batch(self):
        if self.training and not self._seen:
            self.sizes.append(tuple(self.xb[0].shape[-2:]))
            self._seen = True

    def after_fit(self):
        self.ends.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})


def test_progressive_resizing_stage_starts_from_previous_weights(tmp_path, make_fashionai_root):
    root = tiny_root(make_fashionai_root, tmp_path)
    cfg = tiny_config(tmp_path, "exp=prog", "train.stages=[32, 48]", "train.frozen_epochs=0")
    snap = Snapshots()
    train_run(root, "all", "0", cfg, extra_cbs=(snap,))
    assert snap.sizes == [(32, 32), (48, 48)]
    first_end, second_start = snap.ends[0], snap.starts[1]
    for name, value in second_start.items():
        assert torch.equal(value, first_end[name]), f"{name} changed between the stages"
    moved = [n for n, v in snap.starts[0].items() if v.is_floating_point() and not torch.equal(v, first_end[n])]
    assert moved, "stage 1 trained the weights"
    pre = json.loads((tmp_path / "runs" / "prog" / KEY / "fold_0" / "preprocess.json").read_text())
    assert pre["size"] == 48 and pre["cache_size"] == 48


class Interrupt(Callback):
    """Simulates a crash right after the given epoch of the given phase was checkpointed."""

    order = 80  # after the Checkpointer (62)

    def __init__(self, phase_size_frozen, epoch):
        self.target, self.at = phase_size_frozen, epoch

    def after_epoch(self):
        frozen = not any(p.requires_grad for p in self.model[0].parameters() if p.ndim > 1)
        if (self.dls.train.one_batch()[0].shape[-1], frozen) == self.target and self.epoch + 1 == self.at:
            raise KeyboardInterrupt("simulated kill")


class CountEpochs(Callback):
    order = 80

    def __init__(self):
        self.n = 0

    def after_epoch(self):
        self.n += 1


def test_interrupted_fold_resumes_from_its_checkpoint(tmp_path, make_fashionai_root, caplog):
    root = tiny_root(make_fashionai_root, tmp_path)
    over = ("exp=resume", "train.unfrozen_epochs=3", "train.schedule=sgdr", "train.checkpoint_every_s=0")
    with pytest.raises(KeyboardInterrupt):
        train_run(root, "all", "0", tiny_config(tmp_path, *over), extra_cbs=(Interrupt((32, False), 1),))
    fold_dir = tmp_path / "runs" / "resume" / KEY / "fold_0"
    ckpt = torch.load(fold_dir / "ckpt" / "last.pth", weights_only=False)
    assert ckpt["state"]["phase"] == 1 and ckpt["state"]["epochs_done"] == 1 and ckpt["opt"] is not None
    assert not (fold_dir / "done.json").exists()
    assert len(pd.read_csv(fold_dir / "log.csv")) == 2

    counter = CountEpochs()
    caplog.set_level("INFO")
    train_run(root, "all", "0", tiny_config(tmp_path, *over), extra_cbs=(counter,))
    assert "resuming at phase 1" in caplog.text
    assert counter.n == 3, "the SGDR phase resumes at its 2nd epoch (fastai counts the skipped one as cancelled)"
    log = pd.read_csv(fold_dir / "log.csv")
    assert log["epoch"].tolist() == [1, 2, 3, 4], "every epoch logged exactly once across the two runs"
    assert log["phase_epoch"].tolist() == [1, 1, 2, 3]
    assert (fold_dir / "done.json").exists() and not (fold_dir / "ckpt").exists()


def test_unreadable_images_are_skipped_with_a_report_or_named(tmp_path, make_fashionai_root):
    root = tiny_root(make_fashionai_root, tmp_path)
    bad = sorted((root / "Images" / KEY).glob("*.jpg"))[0]
    bad.write_bytes(b"broken")
    sets = [a for s in tiny_overrides(tmp_path) for a in ("--set", s)]
    assert main(["train", "--data", str(root), "--folds", "0", "--exp", "strict", *sets]) == 2
    assert main(["train", "--data", str(root), "--folds", "0", "--exp", "lenient", "--skip-bad", *sets]) == 0
    key_dir = tmp_path / "runs" / "lenient" / KEY
    report = pd.read_csv(key_dir / "skipped_images.csv")
    assert len(report) == 1 and report["file"][0].endswith(bad.name)
    oof = pd.read_csv(key_dir / "oof.csv")
    assert bad.name not in " ".join(oof["image"])
