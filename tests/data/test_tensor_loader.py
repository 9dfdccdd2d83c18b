"""The in-memory fast path's data side: the uint8 tensor from the image cache, the loader, the batch transform."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fashiontag.core.errors import ConfigError
from fashiontag.core.skips import SkipReport
from fashiontag.data.cache import build_cache
from fashiontag.data.loaders import fold_dataloaders, view_loaders
from fashiontag.data.tensor_augment import BatchTransform
from fashiontag.data.tensor_images import TensorImages, from_cache
from fashiontag.data.tensor_loader import (
    TensorLoader,
    fold_loader_factory,
    tensor_dataloaders,
    tensor_view_loaders,
    view_loader_factory,
)

CPU = torch.device("cpu")
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
PLAIN = {"flip": False, "rotate": 0, "zoom": [1.0, 1.0], "shift": 0.0, "contrast": 0.0, "brightness": 0.0,
         "random_resized_crop": None, "p_affine": 1.0, "p_lighting": 1.0, "erase": 0.0}


def gray_pngs(folder: Path, n: int, size: int = 8, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, p in enumerate(pixels):
        Image.fromarray(p, mode="L").save(folder / f"{i}.png")
        paths.append(str(folder / f"{i}.png"))
    return paths, pixels


def images_of(pixels: np.ndarray) -> TensorImages:
    return TensorImages(torch.from_numpy(pixels[:, None]), np.ones(len(pixels), bool), Path("x.npy"))


def test_gray_cache_becomes_one_channel_tensor(tmp_path: Path) -> None:
    paths, pixels = gray_pngs(tmp_path / "img", 6)
    cache = build_cache(paths, 8, tmp_path / "cache", name="g", resize="squish", workers=1)
    images = from_cache(cache, CPU)
    assert images.pixels.shape == (6, 1, 8, 8) and images.pixels.dtype == torch.uint8
    assert (images.pixels[:, 0].numpy() == pixels).all() and len(images) == 6 and images.size == 8
    # a colour image keeps its three channels
    Image.fromarray(np.stack([pixels[0], pixels[1], pixels[2]], -1), "RGB").save(tmp_path / "c.png")
    colour = from_cache(build_cache([str(tmp_path / "c.png")], 8, tmp_path / "cache", name="c", resize="squish",
                                    workers=1), CPU)
    assert colour.channels == 3 and (colour.pixels[0, 1].numpy() == pixels[1]).all()


def test_plain_transform_normalises_broadcasts_and_resizes() -> None:
    u8 = torch.tensor([[[[0, 255], [51, 102]]]], dtype=torch.uint8)  # (1, 1, 2, 2)
    out = BatchTransform(2, MEAN, STD, None, CPU)(u8)
    assert out.shape == (1, 3, 2, 2) and out.is_contiguous(memory_format=torch.channels_last)
    expected = (u8.float() / 255 - 0.5) / 0.25
    assert torch.allclose(out, expected.expand(1, 3, 2, 2), atol=1e-6)
    assert BatchTransform(4, MEAN, STD, None, CPU)(u8).shape == (1, 3, 4, 4)  # upsampled for a bigger stage


def test_augment_identity_flip_shift_and_erase() -> None:
    torch.manual_seed(0)
    u8 = torch.arange(64, dtype=torch.uint8).view(1, 1, 8, 8).repeat(4, 1, 1, 1) * 3
    plain = BatchTransform(8, MEAN, STD, None, CPU)(u8)
    # an augmentation that draws nothing reproduces the plain batch (one bilinear resample at pixel centres)
    assert torch.allclose(BatchTransform(8, MEAN, STD, PLAIN, CPU)(u8), plain, atol=1e-4)
    flipped = BatchTransform(8, MEAN, STD, {**PLAIN, "flip": True}, CPU)(u8)
    for img in flipped:
        assert torch.allclose(img, plain[0], atol=1e-4) or torch.allclose(img, plain[0].flip(-1), atol=1e-4)
    assert not all(torch.allclose(img, flipped[0], atol=1e-4) for img in flipped)  # both directions drawn
    shifted = BatchTransform(8, MEAN, STD, {**PLAIN, "shift": 0.25}, CPU)
    theta = shifted.affine_matrices(500)
    assert theta[:, :, 2].abs().max() <= 0.5 + 1e-6 and theta[:, :, 2].abs().max() > 0.4  # +-25% of the side
    assert torch.allclose(theta[:, :, :2], torch.eye(2).expand(500, 2, 2))
    erased = BatchTransform(8, MEAN, STD, {**PLAIN, "erase": 1.0}, CPU)(u8.repeat(50, 1, 1, 1))
    frac = (erased == 0).float().mean(dim=(1, 2, 3))
    assert frac.min() > 0 and frac.max() <= 0.5  # every image lost a rectangle of at most ~25% (+ edges)


def test_rotation_and_zoom_matrices() -> None:
    torch.manual_seed(1)
    aug = {**PLAIN, "rotate": 30, "zoom": [1.0, 1.5], "p_affine": 0.5}
    theta = BatchTransform(28, MEAN, STD, aug, CPU).affine_matrices(2000)
    lin = theta[:, :, :2]
    scale = torch.linalg.det(lin).sqrt()  # 1 / zoom
    angle = torch.atan2(lin[:, 1, 0], lin[:, 0, 0]).abs()
    untouched = (scale > 1 - 1e-6) & (angle < 1e-6)
    assert 0.4 < untouched.float().mean() < 0.6  # p_affine 0.5
    assert scale.min() >= 1 / 1.5 - 1e-5 and angle.max() <= math.radians(30) + 1e-5


def test_loader_batches_order_and_resumable_shuffle() -> None:
    pixels = np.arange(10 * 4, dtype=np.uint8).reshape(10, 2, 2) * 5
    targets = torch.eye(10)
    images = images_of(pixels)
    valid = TensorLoader(images, [9, 3, 5], targets, 2, BatchTransform(2, MEAN, STD, None, CPU))
    batches = list(valid)
    assert len(valid) == 2 and [len(b[0]) for b in batches] == [2, 1]
    assert torch.equal(torch.cat([b[1] for b in batches]).argmax(1), torch.tensor([9, 3, 5]))
    train = TensorLoader(images, range(10), targets, 4, BatchTransform(2, MEAN, STD, None, CPU), shuffle=True,
                         drop_last=True)
    assert len(train) == 2 and len(train.dataset) == 10
    state = train.rng.getstate()
    first = torch.cat([y for _, y in train]).argmax(1)
    assert len(first) == 8 and len(set(first.tolist())) == 8
    train.rng.setstate(state)  # resume restores the loader's stream: the same order again
    assert torch.equal(torch.cat([y for _, y in train]).argmax(1), first)
    assert not torch.equal(torch.cat([y for _, y in train]).argmax(1), first)  # the next epoch reshuffles
    assert len(train.new(shuffle=False, drop_last=False)) == 3


def test_dataloaders_for_fastai(tmp_path: Path) -> None:
    random.seed(0)
    pixels = np.random.default_rng(0).integers(0, 256, (20, 6, 6), dtype=np.uint8)
    dls = tensor_dataloaders(images_of(pixels), np.eye(4, dtype=np.float32)[np.arange(20) % 4], range(12),
                             range(12, 20), 6, MEAN, STD, {**PLAIN, "rotate": 10}, 5, CPU)
    assert len(dls.train) == 2 and len(dls.valid) == 2 and dls.n_inp == 1 and len(dls.valid_ds) == 8
    x, y = dls.valid.one_batch()
    assert x.shape == (5, 3, 6, 6) and y.shape == (5, 4) and type(x) is torch.Tensor  # no TensorImage


def test_factories_pick_the_path_and_refuse_file_pipeline_only_settings(tmp_path: Path) -> None:
    cfg = {"data": {"in_memory": True}, "augment": {**PLAIN, "shift": 0.1}}
    assert fold_loader_factory(cfg) is tensor_dataloaders and view_loader_factory(cfg) is tensor_view_loaders
    cfg["data"]["in_memory"] = False
    with pytest.raises(ConfigError, match="augment.shift=0.1 needs data.in_memory=true"):
        fold_loader_factory(cfg)
    cfg["augment"]["shift"] = 0.0
    assert fold_loader_factory(cfg) is fold_dataloaders and view_loader_factory(cfg) is view_loaders


def test_view_loaders_read_the_prediction_cache(tmp_path: Path) -> None:
    paths, pixels = gray_pngs(tmp_path / "img", 5)
    pre = {"size": 8, "cache_size": 8, "resize": "squish", "pad_value": [0, 0, 0], "mean": MEAN, "std": STD,
           "augment": {**PLAIN, "flip": True}}
    cfg = {"cache": {"dir": str(tmp_path / "cache"), "workers": None}, "train": {"num_workers": 0, "batch_size": 2}}
    make_dl, kept = tensor_view_loaders(paths, pre, cfg, CPU, SkipReport(skip=False))
    assert kept == [0, 1, 2, 3, 4]
    (x,) = next(iter(make_dl(False)))
    assert torch.allclose(x[:, 0], (torch.from_numpy(pixels[:2]).float() / 255 - 0.5) / 0.25, atol=1e-5)
    assert sum(len(b[0]) for b in make_dl(True)) == 5
