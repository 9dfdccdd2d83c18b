"""model.feature_layers: the body returns the pooled outputs of the chosen stages + the final map; a fold
directory rebuilds it; as a partial run's frozen prefix (trainable_stages 0) only the head trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fashiontag.core.errors import ConfigError
from fashiontag.data import loaders as tdata
from fashiontag.fashionai.probs import probs_of
from fashiontag.fashionai.runs import load_oof
from fashiontag.models.build import build_model, head_spec, load_fold_model
from fashiontag.models.partial import split_body
from fashiontag.train.runner import train_run
from helpers.training import KEY, tiny_config, tiny_root

MODEL = {"head_hidden": [8], "head_dropout": 0.0, "pool": "avg", "feature_pools": ["avg", "max"]}


def test_the_body_returns_pooled_stage_outputs_and_the_final_map():
    torch.manual_seed(0)
    model, _ = build_model("resnet10t", 3, head_spec({**MODEL, "feature_layers": [1, -2]}))
    model.eval()
    timm_body = model[0].body.model
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        out = model[0](x)
        h = timm_body.maxpool(timm_body.act1(timm_body.bn1(timm_body.conv1(x))))
        l1 = timm_body.layer1(h)
        l2 = timm_body.layer2(l1)
        l3 = timm_body.layer3(l2)
        l4 = timm_body.layer4(l3)
    expect = torch.cat([m(t).flatten(1) for t in (l2, l3, l4)  # stage 1 = layer2, -2 = layer3, then the final map
                        for m in (torch.nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveMaxPool2d(1))], 1)
    assert out.shape == (2, expect.shape[1], 1, 1)
    np.testing.assert_allclose(out.flatten(1).numpy(), expect.numpy(), rtol=1e-5, atol=1e-6)
    assert model[1][2].num_features == expect.shape[1]  # the head's first BatchNorm reads all of it


def test_bad_layouts_are_refused():
    with pytest.raises(ConfigError, match="stage indices"):
        build_model("resnet10t", 3, head_spec({**MODEL, "feature_layers": [7]}))
    model, _ = build_model("resnet10t", 3, head_spec({**MODEL, "feature_layers": [-1]}))
    with pytest.raises(ConfigError, match="frozen as a whole"):
        split_body(model[0], 1)


def test_a_frozen_multi_layer_run_trains_the_head_and_saves_the_whole_model(tmp_path, make_fashionai_root,
                                                                          monkeypatch):
    monkeypatch.setattr("fashiontag.train.fold.set_seed", lambda *a, **k: torch.manual_seed(0))
    root = tiny_root(make_fashionai_root, tmp_path)
    cfg = tiny_config(tmp_path, "train.trainable_stages=0", "model.feature_layers=[-2]", "train.feature_views=2",
                      "train.frozen_epochs=2", "train.unfrozen_epochs=0", "train.lr=1e-2", "exp=ml")
    train_run(root, "all", "0", cfg)
    fold_dir = tmp_path / "runs" / "ml" / KEY / "fold_0"
    model, pre = load_fold_model(fold_dir)
    assert pre["head"]["layers"] == [-2]
    rows = load_oof(fold_dir.parent)
    dl = tdata.test_dataloader([root / p for p in rows["image"]], pre, batch_size=4, device="cpu")
    with torch.no_grad():
        probs = torch.cat([torch.softmax(model(b[0]), 1) for b in dl]).numpy()
    np.testing.assert_allclose(probs, probs_of(rows, 3), atol=2e-3)

    torch.manual_seed(0)
    start, _ = build_model("resnet10t", 3, head_spec(cfg["model"]))
    saved, init = model.state_dict(), start.state_dict()
    changed = {n for n, v in init.items() if v.is_floating_point() and not torch.equal(saved[n], v)}
    assert changed and all(n.startswith("1.") for n in changed), sorted(changed)[:5]  # the head alone trained
