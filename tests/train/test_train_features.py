"""train.feature_cache: the head trained on cached body features gives a model.pth that predicts exactly
the out-of-fold probabilities, the features are computed once for all folds, and bad configs are refused."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from fashiontag.core.errors import ConfigError
from fashiontag.data import loaders as tdata
from fashiontag.fashionai.probs import probs_of
from fashiontag.fashionai.runs import load_oof
from fashiontag.models.build import load_fold_model
from fashiontag.train.feature_cache import check_feature_cache_config, view_names
from fashiontag.train.runner import train_run
from helpers.training import KEY, tiny_config, tiny_root

FEATURE_SETS = ("train.feature_cache=true", "train.unfrozen_epochs=0", "train.frozen_epochs=2",
                "train.feature_views=3")


def test_head_on_cached_features_predicts_like_the_saved_model(tmp_path, make_fashionai_root, caplog,
                                                                 monkeypatch):
    root = tiny_root(make_fashionai_root, tmp_path)
    cfg = tiny_config(tmp_path, *FEATURE_SETS, "exp=feat")
    # Every fold builds the same body, as pretrained weights would (random init differs per fold's seed).
    monkeypatch.setattr("fashiontag.train.fold.set_seed", lambda *a, **k: torch.manual_seed(0))
    with caplog.at_level(logging.INFO, logger="fashiontag"):
        train_run(root, "all", None, cfg)
    key_dir = tmp_path / "runs" / "feat" / KEY
    views = sorted((tmp_path / "cache" / "features").glob("*.npy"))
    assert [p.name.rsplit("_", 1)[1] for p in views] == ["aug0.npy", "flip.npy", "orig.npy"]
    computed = [r.getMessage() for r in caplog.records if "views of" in r.getMessage()]
    assert len(computed) == 1, "fold 0 computes the views, fold 1 reuses them"

    oof = load_oof(key_dir)
    assert sorted(oof["fold"].unique()) == [0, 1]
    for fold in (0, 1):
        fold_dir = key_dir / f"fold_{fold}"
        model, pre = load_fold_model(fold_dir)
        rows = oof[oof["fold"] == fold]
        dl = tdata.test_dataloader([root / p for p in rows["image"]], pre, batch_size=4, device="cpu")
        with torch.no_grad():
            probs = torch.cat([torch.softmax(model(b[0]), 1) for b in dl]).numpy()
        # The whole saved body + head reproduces what the head scored on the cached plain view.
        np.testing.assert_allclose(probs, probs_of(rows, 3), atol=1e-4)

    # The flip view really is the flipped image's features, and the plain view the plain image's.
    orig, flip = (np.load(next(p for p in views if p.name.endswith(f"_{n}.npy"))) for n in ("orig", "flip"))
    assert orig.shape == flip.shape and not np.allclose(orig, flip)


def test_cached_features_train_exactly_like_fresh_ones(tmp_path, make_fashionai_root):
    root = tiny_root(make_fashionai_root, tmp_path)  # fold 0 only: both runs seed the same random-init body
    oofs = []
    for exp in ("fresh", "cached"):  # the second run finds every view on disk
        cfg = tiny_config(tmp_path, *FEATURE_SETS, f"exp={exp}")
        cfg["train"]["lr_find"], cfg["train"]["lr"] = True, "auto"  # the finder draws random batches too
        cfg["train"]["lr_find_iters"] = 5
        train_run(root, "all", "0", cfg)
        oofs.append(load_oof(tmp_path / "runs" / exp / KEY))
    np.testing.assert_array_equal(probs_of(oofs[0], 3), probs_of(oofs[1], 3))


def test_the_head_learns_the_training_rows(tmp_path, make_fashionai_root):
    root = tiny_root(make_fashionai_root, tmp_path, per_value=6)
    cfg = tiny_config(tmp_path, *FEATURE_SETS, "train.frozen_epochs=30", "train.lr=1e-2", "exp=fit",
                      "model.head_dropout=0.0", "train.label_smoothing=0.0")
    train_run(root, "all", "0", cfg)
    log = pd.read_csv(tmp_path / "runs" / "fit" / KEY / "fold_0" / "log.csv")
    losses = log["train_loss"].to_numpy()
    assert losses[-5:].mean() < 0.7 * losses[0], losses.tolist()


@pytest.mark.parametrize("bad, message", [
    ({"unfrozen_epochs": 2}, "unfrozen_epochs"),
    ({"stages": [32, 48]}, "exactly one size"),
    ({"frozen_epochs": 0}, "frozen_epochs"),
])
def test_configs_that_would_change_the_body_are_refused(bad, message):
    train = {"unfrozen_epochs": 0, "stages": [32], "frozen_epochs": 1, "feature_views": 2, "cutmix": 0.0, **bad}
    with pytest.raises(ConfigError, match=message):
        check_feature_cache_config(train)


def test_view_names():
    assert view_names(4, flip=True) == ["orig", "flip", "aug0", "aug1"]
    assert view_names(3, flip=False) == ["orig", "aug0", "aug1"]
    assert view_names(1, flip=True) == ["orig"]


def test_extraction_runs_the_body_on_the_device_the_loader_feeds(tmp_path, monkeypatch):
    """Every parameter and buffer of the body, and every batch, on one device: the run's. `meta` stands in for
    a GPU here (the loader's batch transforms and the body run on it without memory); before the body was moved,
    it stayed on the CPU while the loader yielded device batches."""
    from fashiontag.data.cache import build_cache
    from fashiontag.models.build import build_model, head_spec
    from fashiontag.train import feature_cache
    from helpers.training import write_images

    cfg = tiny_config(tmp_path, *FEATURE_SETS, "train.feature_views=2")  # orig + flip: the plain pass
    cache = build_cache(write_images(tmp_path / "imgs", 6), 32, tmp_path / "cache", workers=1)
    model, _ = build_model("resnet10t", 3, head_spec(cfg["model"]))
    device = torch.device("meta")
    batches = []

    def checking_run_batches(fn, dl, dev, *what):
        assert dev == device
        dims = []
        for b in dl:
            x = b[0].as_subclass(torch.Tensor)
            used = {t.device for t in [*model[0].parameters(), *model[0].buffers()]}
            assert used == {x.device} == {device}, f"body on {used}, batch on {x.device}"
            dims = [r.shape[1] for r in fn(x)]
            batches.append(len(x))
        return [np.zeros((len(cache), d), np.float32) for d in dims]

    # The feature cache extracts through models/features.py, which runs the batches.
    monkeypatch.setattr("fashiontag.models.features.run_batches", checking_run_batches)
    feats = feature_cache.cached_features(model, cache, cfg, 32, [0.5] * 3, [0.25] * 3, device)
    assert sum(batches) == 6 and feats.shape == (2, 6, 512)
