"""`fashiontag fmnist` end to end on generated idx files (the in-memory fast path, CPU), and its report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
import yaml

from fashiontag.cli import main
from fashiontag.core.config import load_config
from fashiontag.data.idx import CLASSES, KEY
from fashiontag.recipes.fmnist import NO_AUGMENT, phase_configs
from fashiontag.report.fmnist import merge_rows, render, write_report
from helpers.fmnist_idx import write_synthetic


def test_fmnist_command_end_to_end(tmp_path: Path, monkeypatch, capsys) -> None:
    torch.set_num_threads(1)
    monkeypatch.setenv("FASHIONTAG_CACHE", str(tmp_path / "usercache"))
    idx = write_synthetic(tmp_path / "idx", 300, 60)
    report = tmp_path / "reports" / "fmnist.md"
    sets = {
        "data.root": tmp_path / "fm" / "train", "data.test_root": tmp_path / "fm" / "test",
        "data.folds_dir": tmp_path / "folds", "runs_dir": tmp_path / "runs", "cache.dir": tmp_path / "cache",
        "fmnist.idx_dir": idx, "fmnist.limit": 250, "fmnist.aug_epochs": 1, "fmnist.report": report,
        "fmnist.embed_limit": 40, "train.unfrozen_epochs": 3, "train.batch_size": 32, "train.lr": 0.01,
        "train.device": "cpu",
    }
    args = ["fmnist", "--config", "fmnist_cnn1", "--exp", "fm"]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    assert main(args) == 0
    captured = capsys.readouterr()
    printed, logged = captured.out, captured.err
    assert "fm: plain, 3 epochs" in printed and "fm_aug: augmented, 1 epochs" in printed
    # training and prediction went through the in-memory tensors, not per-image files
    assert "in memory: 250 images, 1 channel(s), 28 px" in logged
    assert "in memory: 60 images, 1 channel(s), 28 px" in logged

    # the holdout fold: 80/20 of the (limited) training import, test set whole and untouched by training
    folds = pd.read_csv(tmp_path / "folds" / "fm_train.csv")
    assert len(folds) == 250 and (folds["fold"] == 0).sum() == 50
    key_dir = tmp_path / "runs" / "fm" / KEY
    fold0 = key_dir / "fold_0"
    for png in ("curves.png", "confusion.png"):
        assert (fold0 / png).stat().st_size > 1000
    log = pd.read_csv(fold0 / "log.csv")
    assert len(log) == 3 and log["train_accuracy"].between(0, 1).all() and log["valid_loss"].notna().all()
    oof = pd.read_csv(fold0 / "oof.csv")
    assert len(oof) == 50 and set(oof["fold"]) == {0}
    assert json.loads((key_dir / "cv.json").read_text())["n"] == 50
    test = json.loads((key_dir / "test_metrics.json").read_text())
    assert test["n"] == 60 and len(pd.read_csv(key_dir / "test.csv")) == 60
    assert test["accuracy"] > 0.3, test  # brightness classes: chance is 0.1
    assert (key_dir / "test_confusion.png").stat().st_size > 1000

    # the augmented phase started from the plain run's body and trained with the config's augmentation
    aug_dir = tmp_path / "runs" / "fm_aug" / KEY
    pre = json.loads((aug_dir / "fold_0" / "preprocess.json").read_text())
    assert "fold_0/model.pth" in pre["weights"] and pre["augment"]["rotate"] == 10 and pre["augment"]["shift"] == 0.1
    saved = yaml.safe_load((fold0 / "config.yaml").read_text())
    assert saved["augment"]["rotate"] == 0 and saved["data"]["in_memory"] is True
    assert "fmnist" not in saved and "detect" not in saved  # a classification run keeps its own sections only
    assert json.loads((aug_dir / "test_metrics.json").read_text())["n"] == 60

    # the report: table, figures, the best run's embeddings of the test set
    results = json.loads((tmp_path / "reports" / "fmnist_results.json").read_text())["models"]
    assert [(r["name"], r["phase"]) for r in results] == [("fm", "plain"), ("fm_aug", "augmented")]
    assert {"test_accuracy", "test_log_loss", "epochs", "seconds"} <= set(results[0])
    md = report.read_text()
    assert "| fm | fmnist_cnn1 | plain | 3 |" in md and "fmnist/fmnist_cnn1_curves.png" in md
    best = max(results, key=lambda r: r["valid_accuracy"])
    emb = tmp_path / "reports" / best["embed"]
    assert len((emb / "tensors.tsv").read_text().splitlines()) == 60  # the whole test set, the plots a sample
    meta = (emb / "metadata.tsv").read_text().splitlines()
    assert meta[0] == "image\tlabel" and len(meta) == 61 and meta[1].split("\t")[1] in CLASSES
    for png in (emb / "pca.png", emb / "tsne.png", tmp_path / "reports" / best["confusion"]):
        assert png.stat().st_size > 1000


def test_fmnist_needs_the_import_layout(tmp_path: Path) -> None:
    args = ["fmnist", "--config", "fmnist_cnn1", "--set", f"data.root={tmp_path}/x",
            "--set", f"data.test_root={tmp_path}/y"]
    assert main(args) == 2


def test_phases_of_a_config() -> None:
    cfg = load_config("fmnist_cnn4", ["fmnist.aug_epochs=3"], family="fmnist")
    (p1, first), (p2, second) = phase_configs(cfg, "cnn4")
    assert (p1, first["exp"], p2, second["exp"]) == ("plain", "cnn4", "augmented", "cnn4_aug")
    assert all(first["augment"][k] == v for k, v in NO_AUGMENT.items()) and second["augment"]["rotate"] == 10
    assert second["model"]["weights"].endswith(f"cnn4/{KEY}/fold_0/model.pth")
    assert second["train"]["unfrozen_epochs"] == 3 and second["train"]["frozen_epochs"] == 0
    # TTA's mirrored views are for a model that saw mirrored images: never the plain phase's
    tta = load_config("fmnist_cnn4", ["tta.enabled=true", "fmnist.aug_lr=0.001"], family="fmnist")
    (_, first), (_, second) = phase_configs(tta, "cnn4")
    assert first["tta"]["enabled"] is False and second["tta"]["enabled"] is True
    assert first["train"]["lr"] == tta["train"]["lr"] and second["train"]["lr"] == 0.001
    one = load_config("fmnist_cnn4", ["fmnist.aug_epochs=0", "fmnist.plain=false"], family="fmnist")
    ((phase, run),) = phase_configs(one, "x")
    assert phase == "augmented" and run["augment"]["rotate"] == 10
    table = load_config("fmnist", family="fmnist")
    assert table["fmnist"]["configs"] == ["fmnist_cnn1", "fmnist_cnn3", "fmnist_cnn4"]


def row(name: str, acc: float, model: str = "fmnist_cnn3") -> dict:
    return {"name": name, "config": name, "model": model, "phase": "plain", "test_accuracy": acc,
            "test_log_loss": 0.3, "valid_accuracy": acc, "epochs": 2, "seconds": 10.0, "run": "/nowhere"}


def test_report_merges_invocations(tmp_path: Path) -> None:
    out = tmp_path / "fmnist.md"
    write_report([row("a", 0.90), row("b", 0.91)], row("b", 0.91), None, out)
    write_report([row("b", 0.93), row("lite", 0.92, "efficientnet_lite0")], row("b", 0.93), None, out)
    models = json.loads((tmp_path / "fmnist_results.json").read_text())["models"]
    assert [(m["name"], m["test_accuracy"]) for m in models] == [("a", 0.90), ("b", 0.93), ("lite", 0.92)]
    md = out.read_text()
    assert "**0.9300**" in md and "upsampled and repeated to three channels" in md
    assert "Best run by validation accuracy: b" in md
    assert merge_rows([row("a", 0.1)], []) == [row("a", 0.1)]
    assert render([]).startswith("# Fashion-MNIST")


def test_every_fmnist_config_loads() -> None:
    """Every Fashion-MNIST config loads and names registered models (no training)."""
    import timm

    import fashiontag.models.build  # noqa: F401  (registers the Fashion-MNIST timm models)

    names = ("fmnist", "fmnist_cnn1", "fmnist_cnn3", "fmnist_cnn4", "fmnist_tutorial", "fmnist_best", "fmnist_best_gpu",
             "fmnist_lite0")
    for name in names:
        cfg = load_config(name, family="fmnist")
        assert timm.is_model(cfg["model"]["backbone"]) and cfg["data"]["in_memory"] is True, name
