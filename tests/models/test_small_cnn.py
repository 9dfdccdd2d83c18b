"""The Fashion-MNIST CNNs and small wide ResNets as timm models, through the project's model builder."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from fashiontag.models.build import build_model, model_state, weight_kwargs
from fashiontag.models.small_cnn import ARCHS, FMNIST_MEAN
from fashiontag.models.small_resnet import WRN_ARCHS

HEAD = {"hidden": [16], "dropout": 0.1, "pool": "avg"}
# name -> (conv 3x3 layers of the write-ups' layout, dense width or None, final map side)
LAYOUT = {"fmnist_cnn1": (1, 128, 1), "fmnist_cnn3": (3, 128, 1), "fmnist_cnn4": (4, 512, 1),
          "fmnist_tutorial": (3, None, 7)}


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_timm_model_api(name: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 28, 28)
    model = timm.create_model(name).eval()
    assert model(x).shape == (2, 10)
    assert model.pretrained_cfg["mean"] == FMNIST_MEAN and model.pretrained_cfg["input_size"] == (3, 28, 28)
    body = timm.create_model(name, num_classes=0).eval()
    feats = body.forward_features(x)
    convs, dense, side = LAYOUT[name]
    assert feats.shape == (2, body.num_features, side, side)
    assert feats.shape[-1] == model.pretrained_cfg["pool_size"][0]  # fastai pools what forward_features gives
    assert body(x).shape == (2, body.num_features)  # num_classes=0: pooled features, no classifier
    body.reset_classifier(4)
    assert body(x).shape == (2, 4)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(layers) == convs + (dense is not None)  # a dense layer is one whole-map convolution more
    assert body.num_features == (dense or 128) and layers[-1].out_channels == (dense or 128)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("name", sorted(WRN_ARCHS))
def test_small_wide_resnets(name: str) -> None:
    blocks, widen = WRN_ARCHS[name]
    if name == "fmnist_wrn28_10":
        pytest.skip("a GPU model (5 G multiply-adds per image): too slow for the CPU suite")
    torch.manual_seed(0)
    body = timm.create_model(name, num_classes=0).eval()
    x = torch.randn(2, 3, 28, 28)
    assert body.forward_features(x).shape == (2, 64 * widen, 7, 7)
    assert body.pretrained_cfg["pool_size"] == (7, 7) and body.pretrained_cfg["mean"] == FMNIST_MEAN
    convs = sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) for m in body.modules())
    assert convs == 6 * blocks + 1  # depth = 6 * blocks + 4 counts the stem, 2 per block and the classifier
    model, _ = build_model(name, 10, HEAD, {"pretrained": False})
    assert model(x).shape == (2, 10)


def test_project_builder_and_weight_transfer(tmp_path: Path, monkeypatch) -> None:
    """build_model wraps them like any timm body; a trained model.pth seeds a new run's body (step 2)."""
    monkeypatch.setenv("FASHIONTAG_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model, cfg = build_model("fmnist_cnn3", 10, HEAD, {"pretrained": False})
    assert cfg["mean"] == FMNIST_MEAN
    x = torch.randn(3, 3, 28, 28)
    assert model[0](x).shape == (3, 128, 1, 1) and model(x).shape == (3, 10)
    pth = tmp_path / "model.pth"
    torch.save(model_state(model), pth)
    kwargs, source = weight_kwargs("fmnist_cnn3", True, str(pth))
    assert "local-file" in source
    again, _ = build_model("fmnist_cnn3", 10, HEAD, kwargs)
    for (k, a), (_, b) in zip(model[0].state_dict().items(), again[0].state_dict().items(), strict=True):
        assert torch.equal(a, b), k
