"""Soft targets and their loss, the fold DataLoaders over the cache, the prediction DataLoader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fashiontag.core.errors import DataError
from fashiontag.core.skips import SkipReport
from fashiontag.data.cache import build_cache
from fashiontag.data.loaders import fold_dataloaders, soft_targets, test_dataloader
from fashiontag.train.learner import SoftTargetCrossEntropy, soft_accuracy
from helpers.training import write_images

AUG = {"flip": True, "zoom": [1.0, 1.1], "rotate": 10, "contrast": 0.05, "brightness": 0.0,
       "random_resized_crop": None, "p_affine": 0.75, "p_lighting": 0.75}


def test_soft_targets_sum_to_one_and_put_w_on_maybe():
    t = soft_targets(["nnymn", "ynnnn", "mnmny"], maybe_weight=0.2)
    np.testing.assert_allclose(t.sum(axis=1), 1.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(t[0], [0, 0, 0.8, 0.2, 0])
    np.testing.assert_allclose(t[1], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(t[2], [0.1, 0, 0.1, 0, 0.8])  # two 'm' values share w
    hard = soft_targets(["nnymn"], maybe_weight=0.0)
    np.testing.assert_allclose(hard[0], [0, 0, 1, 0, 0])
    assert (t.argmax(axis=1) == [2, 0, 4]).all()
    with pytest.raises(ValueError, match="maybe_weight"):
        soft_targets(["ym"], maybe_weight=0.5)


def test_soft_target_loss_matches_cross_entropy_and_smoothing():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    hard = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])
    ref = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]), label_smoothing=0.1)
    assert SoftTargetCrossEntropy(0.1)(logits, hard).item() == pytest.approx(ref.item(), rel=1e-6)
    soft = torch.tensor([[0.75, 0.25, 0], [0, 0, 1.0]])
    logp = torch.log_softmax(logits, dim=1)
    expected = -(soft * logp).sum(1).mean()
    assert SoftTargetCrossEntropy(0.0)(logits, soft).item() == pytest.approx(expected.item(), rel=1e-6)
    assert soft_accuracy(logits, soft).item() == 1.0
    assert torch.allclose(SoftTargetCrossEntropy().activation(logits).sum(1), torch.ones(2))


def test_fold_dataloaders_resize_on_the_fly_and_keep_valid_order(tmp_path):
    paths = write_images(tmp_path / "imgs", 10)
    cache = build_cache(paths, 48, tmp_path / "cache")
    targets = soft_targets(["ynn", "nyn", "nny", "ynn", "nyn", "nny", "ynn", "nyn", "nny", "ynn"])
    dls = fold_dataloaders(cache, targets, [0, 1, 2, 3, 4, 5], [9, 7, 8], 32, [0.5] * 3, [0.25] * 3, AUG, 4,
                           torch.device("cpu"))
    x, y = dls.train.one_batch()
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (4, 3) and torch.allclose(y.sum(1), torch.ones(4))
    assert len(dls.train) == 1, "6 training images, batch 4: the ragged last batch is dropped"
    xs, ys = zip(*list(dls.valid), strict=True)
    yv = torch.cat(ys)
    assert yv.argmax(1).tolist() == [0, 1, 2], "valid rows 9, 7, 8 in the given order"
    assert torch.cat(xs).shape == (3, 3, 32, 32)
    # normalised: mean 0.5, std 0.25 maps [0, 1] onto [-2, 2]
    assert torch.cat(xs).min() >= -2.0 - 1e-5 and torch.cat(xs).max() <= 2.0 + 1e-5


def test_test_dataloader_matches_training_preprocessing(tmp_path):
    paths = write_images(tmp_path / "imgs", 5)
    pre = {"size": 32, "cache_size": 48, "resize": "pad", "pad_value": [0, 0, 0], "mean": [0.5] * 3,
           "std": [0.25] * 3, "augment": AUG}
    plain = test_dataloader(paths, pre, batch_size=2, device="cpu", cache_dir=tmp_path / "cache")
    batches = [b[0] for b in plain]
    assert [b.shape[0] for b in batches] == [2, 2, 1] and batches[0].shape[1:] == (3, 32, 32)
    assert plain.kept == [0, 1, 2, 3, 4]
    again = torch.cat([b[0] for b in plain])
    assert torch.equal(torch.cat(batches), again), "without augmentation predictions are deterministic"
    torch.manual_seed(0)
    aug = test_dataloader(paths, pre, batch_size=5, device="cpu", augment=True, cache_dir=tmp_path / "cache")
    a1, a2 = aug.one_batch()[0], aug.one_batch()[0]
    assert a1.shape == (5, 3, 32, 32) and not torch.equal(a1, a2), "augmented views differ per pass"
    # Without a cache the loader decodes files itself; on a smooth image both paths agree up to resampling.
    ramp = np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (24, 1))
    smooth = tmp_path / "ramp.png"
    Image.fromarray(np.stack([ramp, ramp[:, ::-1], ramp], axis=-1)).save(smooth)
    direct = test_dataloader([smooth], pre, device="cpu").one_batch()[0]
    cached = test_dataloader([smooth], pre, device="cpu", cache_dir=tmp_path / "cache").one_batch()[0]
    assert direct.shape == cached.shape == (1, 3, 32, 32)
    inner = (slice(None), slice(None), slice(10, 22), slice(2, 30))  # away from the letterbox edges
    assert (direct - cached)[inner].abs().mean() < 0.05


def test_test_dataloader_skips_or_names_unreadable_images(tmp_path):
    paths = write_images(tmp_path / "imgs", 3)
    paths[2].write_bytes(b"")
    pre = {"size": 16, "mean": [0.5] * 3, "std": [0.25] * 3}
    skips = SkipReport(skip=True)
    dl = test_dataloader(paths, pre, batch_size=4, device="cpu", cache_dir=tmp_path / "cache", skips=skips)
    assert dl.kept == [0, 1] and len(skips) == 1
    assert dl.one_batch()[0].shape[0] == 2
    with pytest.raises(DataError, match="img2.jpg.*empty"):
        list(test_dataloader(paths, pre, batch_size=4, device="cpu"))
