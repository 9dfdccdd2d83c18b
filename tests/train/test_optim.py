"""train/optim.py: torch's AdamW/SGD behind fastai's OptimWrapper make the same steps fastai's own Adam/SGD
made, keep three layer groups (differential rates, freezing), and round-trip through a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastai.optimizer import SGD, Adam
from fastai.torch_core import norm_bias_params
from torch import nn

from fashiontag.core.errors import ConfigError, FashiontagError
from fashiontag.train.optim import LayerGroupOptim, make_opt_func
from helpers.training import tiny_learner


def _model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)),
                         nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)),
                         nn.Sequential(nn.Flatten(), nn.Linear(4, 3)))


def _groups(model: nn.Sequential) -> list[list[nn.Parameter]]:
    return [list(m.parameters()) for m in model]


def _fastai(kind: str, model: nn.Module):
    opt = Adam(_groups(model), lr=1e-2) if kind == "adam" else SGD(_groups(model), lr=1e-2, mom=0.9)
    for p in norm_bias_params(model, with_bias=True):  # what Learner.create_opt does (wd_bn_bias=False)
        opt.state[p]["do_wd"] = False
    return opt


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_same_steps_as_fastais_own_optimizer(kind):
    """Per-group rates, a changing momentum (one-cycle does that) and decoupled weight decay skipping norm
    weights and biases: fastai's Optimizer and the torch one end at the same weights."""
    ref, new = _model(), _model()
    opts = [_fastai(kind, ref), make_opt_func(kind, new, torch.device("cpu"))(_groups(new), lr=1e-2)]
    gen = torch.Generator().manual_seed(1)
    for step in range(6):
        grads = [torch.randn(p.shape, generator=gen) for p in ref.parameters()]
        for model, opt in zip((ref, new), opts, strict=True):
            for p, g in zip(model.parameters(), grads, strict=True):
                p.grad = g.clone()
            opt.set_hypers(lr=np.array([1e-3, 1e-2, 3e-2]) * (1 + step), mom=0.95 - 0.02 * step, wd=0.1)
            opt.step()
            opt.zero_grad()
    for a, b in zip(ref.parameters(), new.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(ref[0][0].weight, _model()[0][0].weight)  # it did move


def test_three_fastai_groups_over_decay_and_no_decay_torch_groups():
    model = _model()
    opt = make_opt_func("adam", model, torch.device("cpu"))(_groups(model), lr=1e-3)
    assert isinstance(opt, LayerGroupOptim) and len(opt.opt.param_groups) == 6
    assert [len(g) for g in opt.param_lists] == [4, 4, 2]
    opt.set_hypers(lr=np.array([1.0, 2.0, 3.0]), wd=0.5, mom=0.8)
    assert [h["lr"] for h in opt.hypers] == [1.0, 2.0, 3.0] and all(h["mom"] == 0.8 for h in opt.hypers)
    torch_groups = opt.opt.param_groups
    assert [g["lr"] for g in torch_groups] == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    assert [g["weight_decay"] for g in torch_groups] == [0.5, 0.0] * 3  # no decay on BN weights and biases
    assert torch_groups[0]["fused"] is True
    no_decay = {id(p) for p in norm_bias_params(model)}
    assert all(id(p) in no_decay for g in torch_groups[1::2] for p in g["params"])
    with pytest.raises(ConfigError, match="train.optimizer"):
        make_opt_func("lamb", model, torch.device("cpu"))


def test_learner_freezes_trains_and_restores_the_torch_optimizer(tmp_path):
    learn, cfg = tiny_learner(tmp_path / "a")
    learn.freeze()
    assert isinstance(learn.opt, LayerGroupOptim) and len(learn.opt.hypers) == 3
    body_weights = [p for p in learn.opt.param_lists[0] if p.ndim > 1]
    assert body_weights and not any(p.requires_grad for p in body_weights)
    learn.unfreeze()
    learn.fit_one_cycle(1, lr_max=np.array([1e-4, 1e-3, 1e-2]))
    lrs = [g["lr"] for g in learn.opt.opt.param_groups]
    assert lrs[0] == lrs[1] < lrs[2] == lrs[3] < lrs[4] == lrs[5]  # differential rates per layer group
    saved = learn.opt.state_dict()
    assert saved["state"] and len(saved["param_groups"]) == 6

    other, _ = tiny_learner(tmp_path / "b")
    other.unfreeze()
    other.opt.load_state_dict(saved)
    for p, q in zip(learn.opt.opt.state, other.opt.opt.state, strict=True):
        for k in learn.opt.opt.state[p]:
            torch.testing.assert_close(learn.opt.opt.state[p][k], other.opt.opt.state[q][k])
    with pytest.raises(FashiontagError, match="fastai's own optimizer.*--force"):
        other.opt.load_state_dict({"state": [], "hypers": []})
