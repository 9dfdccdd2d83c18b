"""train.trainable_stages: the last body stages + head train on cached activations; one prefix pass per view
serves every fold, the out-of-fold TTA and later runs (the stack refuses per-fold stages); model.pth is the whole model and predicts like the OOF."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fashiontag.core.errors import ConfigError
from fashiontag.data import loaders as tdata
from fashiontag.fashionai.probs import probs_of
from fashiontag.fashionai.runs import load_oof, read_prob_table
from fashiontag.infer.predict import predict_run
from fashiontag.models.build import build_model, head_spec, load_fold_model
from fashiontag.stack.runner import stack_run
from fashiontag.train.partial_fit import check_partial_config
from fashiontag.train.runner import train_run
from helpers.training import KEY, tiny_config, tiny_root

PARTIAL_SETS = ("train.trainable_stages=2", "train.feature_views=2", "train.frozen_epochs=1",
                "train.unfrozen_epochs=2", "train.lr=1e-2", "tta.flips_only=true", "tta.on_oof=true",
                "stack.n_estimators=5")


@pytest.fixture
def stem_images(monkeypatch):
    """Images through a body's first convolution (3 input channels), counted over every model in the process;
    every fold also builds the same random-init body, as pretrained weights would."""
    monkeypatch.setattr("fashiontag.train.fold.set_seed", lambda *a, **k: torch.manual_seed(0))
    seen = []

    def hook(module, args, out):
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            seen.append(int(args[0].shape[0]))

    handle = nn.modules.module.register_module_forward_hook(hook)
    yield seen
    handle.remove()


def test_one_prefix_pass_serves_every_fold_and_the_tta(tmp_path, make_fashionai_root, stem_images):
    root = tiny_root(make_fashionai_root, tmp_path)
    n_images = 12
    cfg = tiny_config(tmp_path, *PARTIAL_SETS, "exp=part")
    train_run(root, "all", None, cfg)
    assert sum(stem_images) == 2 * n_images  # orig + flip, once for both folds

    key_dir = tmp_path / "runs" / "part" / KEY
    oof = load_oof(key_dir)
    assert sorted(oof["fold"].unique()) == [0, 1] and len(oof) == n_images
    stem_images.clear()
    predict_run(key_dir.parent, None)  # both folds' out-of-fold TTA (orig + flip): rows of the cache
    assert sum(stem_images) == 0
    tta = read_prob_table(key_dir / "oof_tta.csv", need=("image", "fold"))
    assert len(tta) == n_images and np.isfinite(probs_of(tta, 3)).all()
    # Per-fold adapted stages describe each fold's photos in its own feature space: no stack across folds.
    with pytest.raises(ConfigError, match="one body shared by every fold"):
        stack_run(key_dir.parent, None, out_dir=tmp_path / "runs" / "part_xgb", force=True)
    assert not (tmp_path / "runs" / "part_xgb" / KEY / "oof.csv").exists()

    # A second run of the same body (another head size) reads every activation from disk.
    cfg2 = tiny_config(tmp_path, *PARTIAL_SETS, "exp=part2", "model.head_hidden=[16]")
    train_run(root, "all", None, cfg2)
    assert sum(stem_images) == 0


def test_the_saved_whole_model_predicts_the_oof_and_only_the_tail_trained(tmp_path, make_fashionai_root,
                                                                         stem_images):
    root = tiny_root(make_fashionai_root, tmp_path)
    cfg = tiny_config(tmp_path, *PARTIAL_SETS, "exp=whole")
    train_run(root, "all", "0", cfg)
    fold_dir = tmp_path / "runs" / "whole" / KEY / "fold_0"
    model, pre = load_fold_model(fold_dir)
    rows = load_oof(fold_dir.parent)
    dl = tdata.test_dataloader([root / p for p in rows["image"]], pre, batch_size=4, device="cpu")
    with torch.no_grad():
        probs = torch.cat([torch.softmax(model(b[0]), 1) for b in dl]).numpy()
    # The image -> body -> head path of model.pth gives what the tail scored on the fp16 activations.
    np.testing.assert_allclose(probs, probs_of(rows, 3), atol=2e-3)

    torch.manual_seed(0)  # the body every fold started from
    start, _ = build_model("resnet10t", 3, head_spec(cfg["model"]))
    saved, init = model.state_dict(), start.state_dict()
    prefix = ("0.model.conv1", "0.model.bn1", "0.model.layer1", "0.model.layer2")
    for name, value in init.items():
        if not value.is_floating_point() or "num_batches" in name:
            continue
        same = torch.equal(saved[name].cpu(), value)
        assert same == name.startswith(prefix), name  # the prefix never trains, the last 2 stages and head do


@pytest.mark.parametrize("change, message", [
    ({"feature_cache": True}, "feature_cache"),
    ({"stages": [32, 48]}, "exactly one size"),
])
def test_configs_the_cache_cannot_serve_are_refused(tmp_path, change, message):
    train = {**tiny_config(tmp_path, *PARTIAL_SETS)["train"], **change}
    with pytest.raises(ConfigError, match=message):
        check_partial_config(train)


def test_a_cold_or_warm_cache_and_validating_only_the_last_epoch_train_the_same_model(tmp_path,
                                                                                     make_fashionai_root):
    """Filling the activation cache draws random numbers that reading it does not, and validating draws the
    loader's seed: neither may change what the fold learns."""
    root = tiny_root(make_fashionai_root, tmp_path)
    runs = {}
    for exp, mode in (("cold", "every"), ("warm", "every"), ("last", "last")):
        cfg = tiny_config(tmp_path, *PARTIAL_SETS, f"exp={exp}", f"train.validate_epochs={mode}")
        train_run(root, "all", "0", cfg)
        fold_dir = tmp_path / "runs" / exp / KEY / "fold_0"
        runs[exp] = (probs_of(load_oof(fold_dir.parent), 3), pd.read_csv(fold_dir / "log.csv"),
                     torch.load(fold_dir / "model.pth", map_location="cpu"))
    (probs, log_every, weights) = runs["warm"]
    for exp in ("cold", "last"):
        np.testing.assert_allclose(runs[exp][0], probs, atol=1e-6, err_msg=exp)
        assert runs[exp][2].keys() == weights.keys()
        for name, value in weights.items():
            torch.testing.assert_close(runs[exp][2][name], value, msg=f"{exp}: {name}")
    # The frozen phase (1 epoch) and the unfrozen phase (2) each score their last epoch only.
    log_last = runs["last"][1]
    assert log_every["valid_loss"].notna().all()
    assert log_last["valid_loss"].isna().tolist() == [False, True, False]
    assert log_last["accuracy"].iloc[-1] == pytest.approx(log_every["accuracy"].iloc[-1])
