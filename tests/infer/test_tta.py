"""TTA: the view plan, mean/max of known views by hand, seeded augmented views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fashiontag.core.config import load_config
from fashiontag.core.errors import ConfigError
from fashiontag.core.skips import SkipReport
from fashiontag.infer.predict import predict_fold
from fashiontag.models.tta import FLIP, ORIG, combine_views, view_plan

SIZE = 8


class HalfMeans(nn.Module):
    """logits = [10 * mean(left half), 10 * mean(right half), 0]: a horizontal flip swaps the first two."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = x[..., : SIZE // 2].mean(dim=(1, 2, 3))
        right = x[..., SIZE // 2:].mean(dim=(1, 2, 3))
        return torch.stack([10 * left, 10 * right, torch.zeros_like(left)], dim=1)


PRE = {"size": SIZE, "cache_size": SIZE, "resize": "squish", "pad_value": [0, 0, 0],
       "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "augment": {"flip": True, "rotate": 10, "zoom": [1.0, 1.1],
                                                                    "contrast": 0.05, "p_affine": 1.0}}


@pytest.fixture
def white_left(tmp_path):
    """Two images whose left half is white and right half black (after IntToFloat: 1 and 0)."""
    arr = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    arr[:, : SIZE // 2] = 255
    paths = []
    for i in range(2):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
    return paths


def _cfg(tmp_path, *sets):
    return load_config(overrides=[f"cache.dir={tmp_path / 'cache'}", "train.batch_size=2", "train.num_workers=0",
                                  "train.device=cpu", *sets])


def test_view_plan():
    tta = load_config()["tta"]  # every TTA setting, as base.yaml gives them
    assert view_plan({**tta, "enabled": False}, 0) == [ORIG]
    assert view_plan({**tta, "flips_only": True}, 0) == [ORIG, FLIP]
    plan = view_plan({**tta, "n_views": 8, "n_random": 4}, 42)
    assert plan[0] == ORIG and len(plan) == 5 and len(set(plan[1:])) == 4 and all(0 <= v < 8 for v in plan[1:])
    assert plan == view_plan({**tta, "n_views": 8, "n_random": 4}, 42)  # seeded
    assert view_plan({**tta, "n_views": 3, "n_random": 9}, 0) == [ORIG, 0, 1, 2]
    with pytest.raises(ConfigError):
        combine_views(np.ones((2, 1, 2)) / 2, "median")


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_flip_tta_mean_and_max_by_hand(tmp_path, white_left, mode):
    cfg = _cfg(tmp_path, "tta.flips_only=true", f"tta.mode={mode}")
    probs = predict_fold(HalfMeans(), PRE, white_left, cfg, torch.device("cpu"), SkipReport())
    e = np.exp(10.0)
    orig = np.array([e, 1, 1]) / (e + 2)     # left half bright
    flip = np.array([1, e, 1]) / (e + 2)     # mirrored: right half bright
    if mode == "mean":
        expect = (orig + flip) / 2
    else:
        m = np.maximum(orig, flip)
        expect = m / m.sum()
    np.testing.assert_allclose(probs, np.tile(expect, (2, 1)), rtol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_without_tta_is_the_plain_prediction(tmp_path, white_left):
    probs = predict_fold(HalfMeans(), PRE, white_left, _cfg(tmp_path, "tta.enabled=false"), torch.device("cpu"),
                         SkipReport())
    e = np.exp(10.0)
    np.testing.assert_allclose(probs[0], np.array([e, 1, 1]) / (e + 2), rtol=1e-5)


def test_augmented_views_are_seeded(tmp_path, white_left):
    torch.set_num_threads(1)
    sets = ("tta.n_views=8", "tta.n_random=4")
    a = predict_fold(HalfMeans(), PRE, white_left, _cfg(tmp_path, *sets), torch.device("cpu"), SkipReport())
    b = predict_fold(HalfMeans(), PRE, white_left, _cfg(tmp_path, *sets), torch.device("cpu"), SkipReport())
    c = predict_fold(HalfMeans(), PRE, white_left, _cfg(tmp_path, *sets, "seed=7"), torch.device("cpu"), SkipReport())
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(a.sum(axis=1), 1.0)
    # Augmentation (flips among them) moves probability away from the plain prediction's first value.
    plain = np.exp(10.0) / (np.exp(10.0) + 2)
    assert (a[:, 0] < plain).all()
