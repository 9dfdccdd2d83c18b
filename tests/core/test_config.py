"""The config system: base defaults, experiment files, typed overrides, saved resolved configs."""

from __future__ import annotations

import pytest
import yaml

from fashiontag.core.config import apply_overrides, deep_merge, load_config, save_config
from fashiontag.core.errors import ConfigError


def test_base_has_every_section():
    cfg = load_config()
    for section in ("data", "model", "train", "augment", "tta", "stack", "ensemble", "worn", "cache", "report"):
        assert isinstance(cfg[section], dict), section
    assert cfg["config_source"] == "base.yaml"
    assert "detect" not in cfg and "fmnist" not in cfg and "split" not in cfg  # not a classification run's


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
        ("train.batchsize=8", r"train.batchsize=8: unknown setting; did you mean train.batch_size\?"),
        ("nosuch.key=1", "nosuch: unknown section"),
        ("train.batch_size=eight", "train.batch_size=eight: must be a whole number"),
        ("augment.flip=3", "augment.flip=3: must be true or false"),
        ("train.batch_size", "must look like"),
        ("train=3", "train=3: is a section"),
        ("train.batch_size.x=1", "train.batch_size is a setting, not a section"),
        ("detect.epochs=3", "detect is a section of detection commands"),
    ],
)
def test_bad_overrides_are_clear(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        apply_overrides(load_config(), [override])
    assert "\n" not in str(err.value)


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
    with pytest.raises(ConfigError, match=r"train.bach_size=16: unknown setting; did you mean train.batch_size\?"
                                          r" \(from .*typo.yaml\)"):
        load_config(typo)
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"inherits: {parent}\ntrain:\n  schedule: cosine\n")
    with pytest.raises(ConfigError, match=r"train.schedule=cosine: must be 'sgdr' or 'one_cycle' \(from .*bad.yaml\)"):
        load_config(bad)


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(overrides=["seed=7"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert yaml.safe_load(path.read_text()) == cfg
    assert not list((tmp_path / "run").glob(".*.tmp"))


def test_deep_merge_does_not_mutate():
    base = {"a": {"b": 1, "c": [1]}}
    merged = deep_merge(base, {"a": {"b": 2}})
    assert merged == {"a": {"b": 2, "c": [1]}} and base == {"a": {"b": 1, "c": [1]}}


def test_overrides_are_typed_by_the_schema():
    cfg = load_config(None, ["train.lr=1e-3", "train.lr=auto", "train.stages=224", "exp=2024",
                             "train.weight_decay=0", "augment.rotate=15"])
    assert cfg["train"]["lr"] == "auto"  # a number and back to auto: both are allowed values
    assert cfg["train"]["stages"] == [224]  # one value where a list is expected
    assert cfg["exp"] == "2024"
    # numbers keep the type they were written with, so saved configs (and cache keys) read back unchanged
    assert cfg["train"]["weight_decay"] == 0 and isinstance(cfg["augment"]["rotate"], int)


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
    # older layouts: the worn section was called split, and runs saved the detector's and fmnist's sections
    cfg["split"] = {**cfg.pop("worn"), "out_dir": "runs/split", "mode": "combined"}
    cfg["detect"], cfg["fmnist"] = {"epochs": 100}, {"fold": 0}
    cfg["train"]["retired_setting"] = 1  # a setting removed since: ignored
    save_config(cfg, tmp_path / "config.yaml")
    got = key_config(tmp_path, None, ["stack.max_bin=64"])
    assert got["stack"]["max_bin"] == 64 and got["train"]["compile"] is False
    assert got["stack"]["max_depth"] == 7  # the run's own values win over the base
    assert got["worn"]["out_dir"] == "runs/split" and got["worn"]["mode"] == "combined"  # its split files
    assert not {"split", "detect", "fmnist"} & set(got) and "retired_setting" not in got["train"]
    with pytest.raises(ConfigError, match="stack.max_bins=64: unknown setting; did you mean stack.max_bin"):
        key_config(tmp_path, None, ["stack.max_bins=64"])  # typos still fail
    (tmp_path / "config.yaml").write_text("train:\n  batch_size: 0\n")
    with pytest.raises(ConfigError, match=r"train.batch_size=0: must be >= 1 \(from .*config.yaml\)"):
        key_config(tmp_path, None, [])
