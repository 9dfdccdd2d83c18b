"""Multi-layer pooled features (`model.feature_layers`): a body whose output is the pooled outputs of some of
its stages and of its final feature map, concatenated.

A frozen ImageNet body's last layer describes whole objects; the stages before it still say where edges and
parts are (a sleeve ending at the elbow or the wrist, a hem at the knee). What this is worth on clothing-small
through the pipeline is not yet measured. The body returns them as a (B, D, 1, 1) map, so the model stays
`nn.Sequential(body, head)` with the usual fastai head, model.pth holds both, and predict, tag, embed and the
stacker use it like any other fold model. Frozen throughout (`train.trainable_stages: 0`), it is the prefix of a
partial run: its output per view is computed once into the activation cache and only the head trains.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fashiontag.core.errors import ConfigError
from fashiontag.models.features import POOLS, pool_features
from fashiontag.models.partial import body_parts


class MultiLayerBody(nn.Module):
    """Run a fastai TimmBody stage by stage; return pooled outputs of `layers` (stage indices) + the final map."""

    frozen_whole = True  # models.partial.split_body: the whole body is the frozen prefix

    def __init__(self, body: nn.Module, layers: Sequence[int], pools: Sequence[str]):
        super().__init__()
        self.body = body
        stem, stages, closing = body_parts(body)
        n = len(stages)
        resolved = sorted({int(i) + n if int(i) < 0 else int(i) for i in layers})
        if not resolved or resolved[0] < 0 or resolved[-1] >= n:
            raise ConfigError(f"model.feature_layers={list(layers)}: stage indices of a body with {n} stages "
                              f"(0..{n - 1}, or -1..-{n})")
        bad = [p for p in pools if p not in POOLS]
        if bad or not pools:
            raise ConfigError(f"model.feature_pools={list(pools)}: one or more of {POOLS}")
        self.layers, self.pools = resolved, list(pools)
        # Part of the state, so a cached output (keyed by the weights' digest) changes with the layout.
        self.register_buffer("layout", torch.tensor([n, *resolved, -1, *(POOLS.index(p) for p in self.pools)]))
        self._parts = (stem, stages, closing)  # views of self.body's modules, not registered twice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem, stages, closing = self._parts
        for m in stem:
            x = m(x)
        feats = []
        for i, stage in enumerate(stages):
            x = stage(x)
            if i in self.layers:
                feats.append(pool_features(x, self.pools))
        for m in closing:
            x = m(x)
        feats.append(pool_features(x, self.pools))
        return torch.cat(feats, dim=1)[:, :, None, None]

    def out_features(self) -> int:
        """D: the length of the concatenated pooled vector (from one tiny forward)."""
        was = self.training
        self.eval()
        with torch.no_grad():
            d = int(self(torch.zeros(1, 3, 64, 64)).shape[1])
        self.train(was)
        return d


def with_feature_layers(model: nn.Sequential, head: dict, n_out: int) -> nn.Sequential:
    """`nn.Sequential(MultiLayerBody(model[0]), a fresh seed head over its D features)`, as fastai inits heads."""
    from fastai.vision.learner import apply_init, create_head

    body = MultiLayerBody(model[0], head["layers"], head["layer_pools"])
    new_head = create_head(body.out_features(), n_out, lin_ftrs=list(head["hidden"]), ps=head["dropout"],
                           pool=True, concat_pool=False)  # the 1 x 1 map pools to itself
    apply_init(new_head, nn.init.kaiming_normal_)
    return nn.Sequential(body, new_head)
