"""The config system: base defaults, experiment files, typed overrides, saved resolved configs."""

from __future__ import annotations

import pytest
import yaml

from fashiontag.core.config import apply_overrides, deep_merge, load_config, save_config
from fashiontag.core.errors import ConfigError


def test_base_has_every_section():
    cfg = load_config()
    for section in ("data", "model", "train", "augment", "tta", "stack", "ensemble", "split", "cache"):
        assert isinstance(cfg[section], dict), section
    assert cfg["config_source"] == "base.yaml"


def test_typed_overrides():
    cfg = load_config(overrides=["train.batch_size=8", "train.lr=3e-4", "augment.flip=false",
                                 "train.stages=[64, 96]", "model.backbone=resnet18"])
    assert cfg["train"]["batch_size"] == 8 and isinstance(cfg["train"]["batch_size"], int)
    assert cfg["train"]["lr"] == pytest.approx(3e-4)
    assert cfg["augment"]["flip"] is False
    assert cfg["train"]["stages"] == [64, 96]
    assert cfg["model"]["backbone"] == "resnet18"


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.batchsize=8", "unknown config key"),
        ("nosuch.key=1", "unknown config section"),
        ("train.batch_size=eight", "expects a number"),
        ("augment.flip=3", "true/false"),
        ("train.batch_size", "must look like"),
        ("train=3", "is a section"),
    ],
)
def test_bad_overrides_are_clear(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(load_config(), [override])


def test_experiment_file_inherits_and_rejects_typos(tmp_path):
    parent = tmp_path / "parent.yaml"
    parent.write_text("train:\n  batch_size: 16\n")
    child = tmp_path / "child.yaml"
    child.write_text(f"inherits: {parent}\nmodel:\n  backbone: resnet18\n")
    cfg = load_config(child, ["train.unfrozen_epochs=2"])
    assert cfg["train"]["batch_size"] == 16
    assert cfg["model"]["backbone"] == "resnet18"
    assert cfg["train"]["unfrozen_epochs"] == 2
    typo = tmp_path / "typo.yaml"
    typo.write_text("train:\n  bach_size: 16\n")
    with pytest.raises(ConfigError, match="train.bach_size"):
        load_config(typo)


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(overrides=["seed=7"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert yaml.safe_load(path.read_text()) == cfg
    assert not list((tmp_path / "run").glob(".*.tmp"))


def test_deep_merge_does_not_mutate():
    base = {"a": {"b": 1, "c": [1]}}
    merged = deep_merge(base, {"a": {"b": 2}})
    assert merged == {"a": {"b": 2, "c": [1]}} and base == {"a": {"b": 1, "c": [1]}}


def test_exponent_floats_in_files(tmp_path):
    exp = tmp_path / "e.yaml"
    exp.write_text("train:\n  lr: 1e-3\n  weight_decay: 5e-2\n")
    cfg = load_config(exp)
    assert cfg["train"]["lr"] == pytest.approx(1e-3) and isinstance(cfg["train"]["lr"], float)
    assert cfg["train"]["weight_decay"] == pytest.approx(0.05)


def test_an_older_run_config_takes_new_base_settings_as_defaults(tmp_path):
    """A run saved before a setting existed still loads (predict/stack/tag) and --set reaches the new setting."""
    from fashiontag.core.config import load_config, save_config
    from fashiontag.fashionai.runs import run_config as key_config

    cfg = load_config(None)
    del cfg["stack"]["max_bin"], cfg["train"]["compile"]  # as saved by an older version
    cfg["stack"]["max_depth"] = 7
    save_config(cfg, tmp_path / "config.yaml")
    got = key_config(tmp_path, None, ["stack.max_bin=64"])
    assert got["stack"]["max_bin"] == 64 and got["train"]["compile"] is False
    assert got["stack"]["max_depth"] == 7  # the run's own values win over the base
    with pytest.raises(ConfigError, match="unknown config key"):
        key_config(tmp_path, None, ["stack.max_bins=64"])  # typos still fail
