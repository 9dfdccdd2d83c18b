"""torch's own AdamW and SGD (fused on CUDA, multi-tensor `foreach` on the CPU) behind fastai's OptimWrapper.

fastai's `Optimizer` steps each parameter tensor in Python, a few small kernels per tensor: ResNeXt-101
32x8d with the seed head has 321 parameter tensors, so thousands of launches (and Python overhead) per step. torch's fused and
foreach implementations do the same arithmetic in a handful of kernels over all tensors at once
(scripts/bench_optim.py measures both on the CPU; docs/BENCHMARKS.md).

The recipe is unchanged from fastai's `Adam` / `SGD(mom=0.9)`:
- the splitter's layer groups (early body, late body, head) stay fastai's parameter groups, so differential
  learning rates, freeze/unfreeze and the one-cycle momentum schedule work as before;
- decoupled weight decay (AdamW; for SGD p <- p * (1 - lr * wd) before the step, as fastai's SGD does, not
  torch's L2 term that momentum would amplify), and none on normalisation weights or biases (fastai's
  `wd_bn_bias=False`): each layer group is two torch groups, the second with its weight decay pinned at 0;
- fastai's Adam constants: betas (0.9, 0.99), eps 1e-5 (torch's defaults differ).
Checkpoints hold torch's optimizer `state_dict` (OptimWrapper passes state_dict / load_state_dict through).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from fastai.optimizer import OptimWrapper, detuplify_pg, set_item_pg
from fastai.torch_core import norm_bias_params
from torch import nn

from fashiontag.core.errors import ConfigError, FashiontagError

ADAM_BETAS, ADAM_EPS, SGD_MOMENTUM = (0.9, 0.99), 1e-5, 0.9
KINDS = ("adam", "sgd")


class SGDW(torch.optim.SGD):
    """SGD with decoupled weight decay (`decay`): each parameter with a gradient is first scaled by
    1 - lr * decay (one foreach kernel per group), then torch's SGD step (fused or foreach) runs."""

    def __init__(self, params, lr: float, momentum: float = SGD_MOMENTUM, decay: float = 0.0, **kwargs):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=0.0, **kwargs)
        self.defaults["decay"] = decay
        for group in self.param_groups:
            group.setdefault("decay", decay)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params and group["decay"]:
                torch._foreach_mul_(params, 1.0 - group["lr"] * group["decay"])
        return super().step(closure)


# torch group key -> fastai hyper-parameter name (what schedulers and Learner.fit set).
HP_MAPS = {
    "adam": {"betas__0": "mom", "betas__1": "sqr_mom", "weight_decay": "wd"},
    "sgd": {"momentum": "mom", "decay": "wd", "weight_decay": "l2_wd"},
}


class LayerGroupOptim(OptimWrapper):
    """fastai's view of a torch optimizer whose param groups come in (decay, no-decay) pairs, one pair per
    layer group: fastai sees one group per pair (hypers, param_lists, freeze_to), and setting `wd` leaves the
    no-decay half at 0."""

    def __init__(self, opt: torch.optim.Optimizer, kind: str):
        super().__init__(opt=opt, hp_map=HP_MAPS[kind])
        self.kind = kind

    def _pairs(self) -> list[tuple[dict, dict]]:
        groups = self.opt.param_groups
        return [(groups[i], groups[i + 1]) for i in range(0, len(groups), 2)]

    @property
    def hypers(self) -> list[dict]:
        return [{self.fwd_map.get(k, k): v for k, v in detuplify_pg(decay).items()} for decay, _ in self._pairs()]

    def _set_hyper(self, k, v) -> None:
        for (decay, plain), value in zip(self._pairs(), v, strict=True):
            set_item_pg(decay, self.bwd_map[k], value)
            if k != "wd":
                set_item_pg(plain, self.bwd_map[k], value)

    @property
    def param_lists(self) -> list[list[nn.Parameter]]:
        return [[*decay["params"], *plain["params"]] for decay, plain in self._pairs()]

    @param_lists.setter
    def param_lists(self, v) -> None:
        raise NotImplementedError("LayerGroupOptim's groups are fixed when it is built")

    def load_state_dict(self, state: dict) -> None:
        if "param_groups" not in state:  # fastai's own Optimizer saved {'state': [...], 'hypers': [...]}
            raise FashiontagError("this checkpoint's optimizer state comes from fastai's own optimizer (an older "
                                  "fashiontag) and cannot continue in torch's; pass --force to retrain the fold")
        self.opt.load_state_dict(state)


def layer_groups(params) -> list[list[nn.Parameter]]:
    """The splitter's output as a list of groups (a flat parameter list is one group)."""
    params = list(params)
    if params and isinstance(params[0], list | tuple):
        return [list(g) for g in params]
    return [params]


def torch_kwargs(device: torch.device) -> dict:
    """Fused kernels where torch has them (CUDA, and the CPU: there foreach is a Python loop over tensors,
    slower than fastai's own step; scripts/bench_optim.py), else the multi-tensor foreach path."""
    return {"fused": True} if device.type in ("cuda", "cpu") else {"foreach": True}


def make_opt_func(kind: str, model: nn.Module, device: torch.device) -> Callable:
    """The Learner's `opt_func(params, lr)`: `params` is the splitter's groups of `model`'s parameters."""
    if kind not in KINDS:
        raise ConfigError(f"train.optimizer must be one of {sorted(KINDS)}, got {kind!r}")

    def opt_func(params: Sequence, lr: float = 1e-3) -> LayerGroupOptim:
        no_decay = {id(p) for p in norm_bias_params(model, with_bias=True)}
        groups: list[dict] = []
        for group in layer_groups(params):
            groups.append({"params": [p for p in group if id(p) not in no_decay]})
            groups.append({"params": [p for p in group if id(p) in no_decay], "weight_decay": 0.0, "decay": 0.0})
        if kind == "adam":
            for g in groups[1::2]:
                g.pop("decay")
            opt = torch.optim.AdamW(groups, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=0.01,
                                    **torch_kwargs(device))
        else:
            for g in groups[1::2]:
                g.pop("weight_decay")
            opt = SGDW(groups, lr=lr, momentum=SGD_MOMENTUM, decay=0.01, **torch_kwargs(device))
        return LayerGroupOptim(opt, kind)

    return opt_func
