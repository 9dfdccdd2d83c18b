"""The activation cache of a frozen body prefix: computed once per view, read back for a subset of its images,
invalidated by a changed image, never left half-written; prefix + tail is the whole body."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fashiontag.core.config import load_config
from fashiontag.core.errors import ConfigError
from fashiontag.data.activation_cache import ActivationStore, RowView
from fashiontag.data.cache import build_cache
from fashiontag.models.build import build_model, head_spec
from fashiontag.models.partial import activation_spec, prefix_activations, split_body, trainable_model
from helpers.training import write_images

SIZE = 32
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
AUG = load_config(None)["augment"]  # flip, rotate, zoom, contrast: what an augmented view draws


def _model(backbone: str = "resnet10t"):
    torch.manual_seed(0)
    model, _ = build_model(backbone, 3, head_spec({"head_hidden": [8], "head_dropout": 0.0, "pool": "avg", "feature_layers": []}))
    return model.eval()


def _setup(tmp_path, n: int = 6):
    torch.set_num_threads(1)
    paths = write_images(tmp_path / "img", n, size=(40, 30))
    model = _model()
    split = split_body(model[0], 2)
    spec = activation_spec("resnet10t", split, SIZE, MEAN, STD, AUG, 0)
    return paths, model, split, spec, ActivationStore(tmp_path / "cache" / "activations")


def _acts(split, cache, views, spec, store):
    seen = []
    out = prefix_activations(split, cache, views, spec, store, 4, torch.device("cpu"), on_batch=seen.append)
    return out, sum(seen)


def test_a_subset_reads_the_rows_of_the_whole_cache(tmp_path):
    paths, _, split, spec, store = _setup(tmp_path)
    cache = build_cache(paths, SIZE, tmp_path / "cache" / "img", name="all", pad_value=[0, 0, 0])
    full, n_forward = _acts(split, cache, ["orig", "flip", "aug0"], spec, store)
    assert n_forward == 3 * len(paths)  # orig and flip share the decoding, each is one prefix forward
    assert full["orig"].dtype == np.float16 and full["orig"].shape[0] == len(paths)
    assert not np.allclose(full["orig"], full["flip"])

    again, n_forward = _acts(split, cache, ["orig", "flip", "aug0"], spec, store)
    assert n_forward == 0
    np.testing.assert_array_equal(again["aug0"], full["aug0"])

    picked = [4, 1, 2]  # a view of the whole image cache, in another order
    sub = build_cache([paths[i] for i in picked], SIZE, tmp_path / "cache", name="predict", pad_value=[0, 0, 0])
    assert sub.rows is not None
    part, n_forward = _acts(split, sub, ["orig", "flip"], spec, store)
    assert n_forward == 0
    assert isinstance(part["orig"], RowView) and part["orig"].shape == (3, *full["orig"].shape[1:])
    np.testing.assert_array_equal(np.asarray(part["flip"]), np.asarray(full["flip"])[picked])
    np.testing.assert_array_equal(part["orig"][1], full["orig"][1])


def test_a_changed_image_or_another_body_is_computed_again(tmp_path):
    paths, _, split, spec, store = _setup(tmp_path)
    cache = build_cache(paths, SIZE, tmp_path / "cache" / "img", name="all", pad_value=[0, 0, 0])
    before, _ = _acts(split, cache, ["orig"], spec, store)
    before = np.array(before["orig"])

    Image.new("RGB", (40, 30), (250, 10, 10)).save(paths[2])  # new content (and size, mtime) for image 2
    changed = build_cache(paths, SIZE, tmp_path / "cache" / "img", name="all", pad_value=[0, 0, 0])
    assert changed.path != cache.path
    after, n_forward = _acts(split, changed, ["orig"], spec, store)
    assert n_forward == len(paths)
    after = np.asarray(after["orig"])
    assert not np.allclose(after[2], before[2])
    np.testing.assert_allclose(after[[0, 1, 3, 4, 5]], before[[0, 1, 3, 4, 5]], atol=1e-3)

    other = split_body(_model()[0], 1)  # another cut is another prefix
    spec1 = activation_spec("resnet10t", other, SIZE, MEAN, STD, AUG, 0)
    assert spec1["prefix"] != spec["prefix"]
    _, n_forward = _acts(other, changed, ["orig"], spec1, store)
    assert n_forward == len(paths)


def test_an_interrupted_pass_leaves_no_file(tmp_path):
    paths, _, split, spec, store = _setup(tmp_path)
    cache = build_cache(paths, SIZE, tmp_path / "cache" / "img", name="all", pad_value=[0, 0, 0])

    def stop(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prefix_activations(split, cache, ["orig"], spec, store, 4, torch.device("cpu"), on_batch=stop)
    assert list(store.root.iterdir()) == []
    assert store.lookup(cache, spec, "orig") is None


@pytest.mark.parametrize("backbone, n", [("resnet10t", 2), ("efficientnet_lite0", 1)])
def test_prefix_then_tail_is_the_whole_body(backbone, n):
    torch.set_num_threads(1)
    model = _model(backbone)
    tm, split = trainable_model(model, n)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        np.testing.assert_allclose(tm(split.prefix(x)).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)
    trained = {id(p) for p in tm.parameters()}
    assert trained.isdisjoint(id(p) for p in split.prefix.parameters())
    assert len(trained) + sum(1 for _ in split.prefix.parameters()) == sum(1 for _ in model.parameters())


def test_a_cut_the_body_does_not_have_is_refused():
    with pytest.raises(ConfigError, match="4 stages"):
        split_body(_model()[0], 5)
    with pytest.raises(ConfigError, match="nothing"):
        split_body(_model()[0], 0)


def test_compiled_prefix_matches_eager_and_pads_the_ragged_batch(tmp_path):
    paths, _, split, spec, store = _setup(tmp_path, n=7)
    cache = build_cache(paths, SIZE, tmp_path / "cache" / "img", name="all", pad_value=[0, 0, 0])
    eager, _ = _acts(split, cache, ["orig", "flip"], spec, ActivationStore(tmp_path / "eager"))
    seen = []
    # Batches of 4 over 7 images: the last batch of 3 is padded to 4, so one static shape is compiled.
    compiled = prefix_activations(split, cache, ["orig", "flip"], spec, ActivationStore(tmp_path / "compiled"), 4,
                                  torch.device("cpu"), on_batch=seen.append, compile=True)
    assert seen == [4, 4, 3, 3]  # per view and batch, the real images only
    for view in ("orig", "flip"):
        assert compiled[view].shape == eager[view].shape
        np.testing.assert_allclose(np.asarray(compiled[view], np.float32), np.asarray(eager[view], np.float32),
                                   rtol=2e-3, atol=2e-3)  # fp16 storage of float-rounding differences


def test_a_prefix_that_fails_to_compile_runs_eagerly_with_a_warning(monkeypatch, caplog):
    from fashiontag.models.partial import PrefixRunner

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", lambda module, **kw: broken)
    prefix = torch.nn.Conv2d(3, 2, 3).eval()
    runner = PrefixRunner(prefix, 4, compile=True)
    x = torch.randn(3, 3, 8, 8)
    with torch.inference_mode():
        out = runner(x)
        torch.testing.assert_close(out, prefix(x))
    assert runner.compiled is None and "running the frozen prefix eagerly" in caplog.text
    assert "no C++ compiler found" in caplog.text
