"""The one pooled-feature extractor: pools by hand, the head's own pooling, flipped views in one pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fashiontag.core.errors import ConfigError, FashiontagError
from fashiontag.models.build import build_model
from fashiontag.models.features import body_digest, extract_features, head_pools, pool_features


def test_pool_features_by_hand():
    fmap = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    out = pool_features(fmap, ["avg", "max", "grid2"])
    # grid2: the mean of each 2x2 quadrant (top-left, top-right, bottom-left, bottom-right).
    assert out.tolist() == [[7.5, 15.0, 2.5, 4.5, 10.5, 12.5]]
    assert pool_features(torch.zeros(2, 8, 3, 3), ["avg", "grid2"]).shape == (2, 8 * 5)
    with pytest.raises(ConfigError, match="'sum'"):
        pool_features(fmap, ["sum"])
    with pytest.raises(FashiontagError, match="token-based"):
        pool_features(torch.zeros(2, 5, 8), ["avg"])


@pytest.mark.parametrize("head_pool", ["avg", "concat"])
def test_head_pools_match_the_heads_own_pooling(head_pool):
    torch.manual_seed(0)
    model, _ = build_model("resnet10t", 3, {"hidden": [], "dropout": 0.0, "pool": head_pool})
    model.eval()
    fmap = model[0](torch.randn(2, 3, 32, 32))
    own = nn.Sequential(model[1][0], model[1][1])(fmap)  # fastai's pooling + flatten
    torch.testing.assert_close(pool_features(fmap, head_pools(head_pool)), own)
    with pytest.raises(ConfigError, match="model.pool"):
        head_pools("grid2")


def test_extract_features_serves_flips_in_one_pass():
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    x = torch.randn(5, 3, 6, 8)
    batches = [(x[:3],), (x[3:],)]
    plain, flipped = extract_features(body, batches, torch.device("cpu"), ["grid2"], flips=(False, True))
    assert plain.dtype == np.float32 and plain.shape == (5, 16)
    with torch.no_grad():
        np.testing.assert_allclose(flipped, pool_features(body(x.flip(-1)), ["grid2"]).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(plain, pool_features(body(x), ["grid2"]).numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(plain, flipped)  # grid2 sees left and right


def test_body_digest_follows_the_weights():
    body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    before = body_digest(body)
    assert body_digest(body) == before
    body[1].running_mean += 1  # BatchNorm statistics change the features too
    assert body_digest(body) != before
