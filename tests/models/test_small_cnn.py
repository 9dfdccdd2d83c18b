"""The Fashion-MNIST CNNs as timm models, and `fashiontag fmnist` end to end on generated idx files (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import timm
import torch

from fashiontag.cli import main
from fashiontag.data.idx import KEY, write_synthetic
from fashiontag.models.build import build_model, model_state, weight_kwargs
from fashiontag.models.small_cnn import ARCHS, FMNIST_MEAN

HEAD = {"hidden": [16], "dropout": 0.1, "pool": "avg"}


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_timm_model_api(name: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 28, 28)
    model = timm.create_model(name).eval()
    assert model(x).shape == (2, 10)
    assert model.pretrained_cfg["mean"] == FMNIST_MEAN and model.pretrained_cfg["input_size"] == (3, 28, 28)
    body = timm.create_model(name, num_classes=0).eval()
    feats = body.forward_features(x)
    assert feats.ndim == 4 and feats.shape[1] == body.num_features
    assert feats.shape[-1] == model.pretrained_cfg["pool_size"][0]  # fastai pools what forward_features gives
    assert body(x).shape == (2, body.num_features)  # num_classes=0: pooled features, no classifier
    body.reset_classifier(4)
    assert body(x).shape == (2, 4)
    n_convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert n_convs == int(name[-1])
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_project_builder_and_weight_transfer(tmp_path: Path, monkeypatch) -> None:
    """build_model wraps them like any timm body; a trained model.pth seeds a new run's body (step 2)."""
    monkeypatch.setenv("FASHIONTAG_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model, cfg = build_model("fmnist_cnn3", 10, HEAD, {"pretrained": False})
    assert cfg["mean"] == FMNIST_MEAN
    x = torch.randn(3, 3, 28, 28)
    assert model[0](x).shape == (3, 128, 7, 7) and model(x).shape == (3, 10)
    pth = tmp_path / "model.pth"
    torch.save(model_state(model), pth)
    kwargs, source = weight_kwargs("fmnist_cnn3", True, str(pth))
    assert "local-file" in source
    again, _ = build_model("fmnist_cnn3", 10, HEAD, kwargs)
    for (k, a), (_, b) in zip(model[0].state_dict().items(), again[0].state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_fmnist_command_end_to_end(tmp_path: Path, monkeypatch, capsys) -> None:
    torch.set_num_threads(1)
    monkeypatch.setenv("FASHIONTAG_CACHE", str(tmp_path / "usercache"))
    idx = write_synthetic(tmp_path / "idx", 300, 60)
    sets = {
        "data.root": tmp_path / "fm" / "train", "data.test_root": tmp_path / "fm" / "test",
        "data.folds_dir": tmp_path / "folds", "runs_dir": tmp_path / "runs", "cache.dir": tmp_path / "cache",
        "fmnist.idx_dir": idx, "fmnist.limit": 250, "fmnist.aug_epochs": 1, "train.unfrozen_epochs": 4,
        "train.batch_size": 32, "train.lr": 0.01, "train.device": "cpu",
    }
    args = ["fmnist", "--config", "fmnist_cnn1", "--exp", "fm"]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "fm: test accuracy" in printed and "fm_aug: test accuracy" in printed

    # the holdout fold: 80/20 of the (limited) training import, test set whole and untouched by training
    folds = pd.read_csv(tmp_path / "folds" / "fm_train.csv")
    assert len(folds) == 250 and (folds["fold"] == 0).sum() == 50
    key_dir = tmp_path / "runs" / "fm" / KEY
    fold0 = key_dir / "fold_0"
    for png in ("curves.png", "confusion.png"):
        assert (fold0 / png).stat().st_size > 1000
    log = pd.read_csv(fold0 / "log.csv")
    assert len(log) == 4 and log["train_accuracy"].between(0, 1).all()
    test = json.loads((key_dir / "test_metrics.json").read_text())
    assert test["n"] == 60
    assert test["accuracy"] > 0.3, test  # brightness classes: chance is 0.1
    assert (key_dir / "test_confusion.png").stat().st_size > 1000

    # step 2 started from step 1's body and trained with the augmentation of the config
    aug_dir = tmp_path / "runs" / "fm_aug" / KEY
    pre = json.loads((aug_dir / "fold_0" / "preprocess.json").read_text())
    assert "fold_0/model.pth" in pre["weights"] and pre["augment"]["rotate"] == 10
    step1_cfg = (fold0 / "config.yaml").read_text()
    assert "rotate: 0" in step1_cfg
    assert json.loads((aug_dir / "test_metrics.json").read_text())["n"] == 60


def test_fmnist_needs_the_import_layout(tmp_path: Path) -> None:
    args = ["fmnist", "--config", "fmnist_cnn1", "--set", f"data.root={tmp_path}/x",
            "--set", f"data.test_root={tmp_path}/y"]
    assert main(args) == 2
