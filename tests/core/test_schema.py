"""The config schema: base.yaml and the schema agree field by field, values are checked, families stay apart."""

from __future__ import annotations

import pytest
import yaml
from pydantic import BaseModel

from fashiontag.cli import main
from fashiontag.core.config import BASE_NAME, find_config_dir, load_config, save_config
from fashiontag.core.errors import ConfigError
from fashiontag.core.schema import FAMILIES


def _fields(model: type[BaseModel]) -> dict:
    """Nested field names of a schema model: {section: {field: None}} (None for a plain value)."""
    out = {}
    for name, field in model.model_fields.items():
        kind = field.annotation
        out[name] = _fields(kind) if isinstance(kind, type) and issubclass(kind, BaseModel) else None
    return out


def _keys(tree: dict) -> dict:
    return {k: _keys(v) if isinstance(v, dict) else None for k, v in tree.items()}


def test_base_yaml_and_the_schema_name_the_same_fields():
    base = _keys(yaml.safe_load((find_config_dir() / BASE_NAME).read_text()))
    schema: dict = {}
    for model in FAMILIES.values():
        schema.update(_fields(model))
    assert base == schema  # every default has a typed field, every field a default
    for name, model in FAMILIES.items():  # sections in base.yaml's order, so saved configs read like it
        assert list(_fields(model)) == [k for k in base if k in _fields(model)], name


def test_families_hold_only_their_own_sections(tmp_path):
    assert list(load_config(family="detection")) == ["seed", "exp", "cache", "detect", "config_source"]
    fmnist = load_config("fmnist_cnn3", family="fmnist")
    assert "fmnist" in fmnist and "detect" not in fmnist
    run_saved = yaml.safe_load(save_config(fmnist, tmp_path / "fm" / "config.yaml").read_text())
    assert "fmnist" not in run_saved and run_saved["train"] == fmnist["train"]  # its runs are classification runs
    cfg = load_config("fmnist_cnn3")  # an fmnist experiment file also serves `fashiontag train`
    assert not {"fmnist", "detect"} & set(cfg)
    saved = yaml.safe_load(save_config(cfg, tmp_path / "config.yaml").read_text())
    assert not {"fmnist", "detect", "split"} & set(saved) and saved["worn"]["out_dir"] == "runs/worn"
    assert load_config(None, ["detect.epochs=3", "detect.device=cpu"], family="detection")["detect"]["epochs"] == 3
    with pytest.raises(ConfigError, match="data is a section of classification commands"):
        load_config(None, ["data.root=x"], family="detection")
    with pytest.raises(ConfigError, match="fmnist is a section of fmnist commands"):
        load_config(None, ["fmnist.limit=10"])


@pytest.mark.parametrize("override, message", [
    ("train.batch_size=0", "train.batch_size=0: must be >= 1"),
    ("train.stages=[224, 8]", r"train.stages=\[224, 8\]: item 1 must be >= 16"),
    ("train.stages=[]", "train.stages=\\[\\]: must have at least 1 value"),
    ("train.schedule=cosine", "train.schedule=cosine: must be 'sgdr' or 'one_cycle'"),
    ("train.precision=fp8", "must be 'bf16', 'fp16' or 'fp32'"),
    ("train.optimizer=lamb", "must be 'adam' or 'sgd'"),
    ("train.lr_find_suggest=best", "train.lr_find_suggest=best: must be 'valley'"),
    ("train.progress=tqdm", "must be 'auto', 'bar' or 'log'"),
    ("train.lr=fast", "train.lr=fast: must be auto or a number > 0"),
    ("train.lr=0", "train.lr=0: must be auto or a number > 0"),
    ("train.device=gpu", "train.device=gpu: must be auto, cpu, cuda or cuda:N"),
    ("train.lr_ratios=[1, 1]", "must have exactly 3 values"),
    ("train.label_smoothing=1.5", "must be < 1"),
    ("train.sgdr_cycle_mult=1", "must be >= 2"),
    ("augment.zoom=[1.2, 1.0]", "must be in increasing order"),
    ("augment.p_affine=2", "augment.p_affine=2: must be <= 1"),
    ("tta.mode=median", "must be 'mean' or 'max'"),
    ("tta.n_random=-1", "must be >= 0"),
    ("ensemble.method=vote", "must be 'mean', 'weighted', 'geometric', 'weighted_geometric' or 'rank'"),
    ("stack.pool=[avg, sum]", r"stack.pool=\[avg, sum\]: item 1 must be 'avg', 'max' or 'grid2'"),
    ("cache.resize=crop", "must be 'pad' or 'squish'"),
    ("cache.pad_value=[1, 2, 300]", "item 2 must be <= 255"),
    ("worn.mode=split", "must be 'none', 'combined', 'separate' or 'crop'"),
    ("worn.imgsz=16", "worn.imgsz=16: must be auto or a whole number >= 32"),
    ("worn.conf=1.2", "must be <= 1"),
    ("worn.group=all", "must be 'worn' or 'hanger'"),
    ("data.root=null", "data.root=null: must be text"),
    ("model.pool=gem", "must be 'avg' or 'concat'"),
    ("train.batch_size=2.5", "must be a whole number"),
    ("train.channels_last=1", "must be true or false"),
])
def test_values_are_checked_with_one_line_naming_the_setting(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(None, [override])
    text = str(err.value)
    assert text.startswith("config: ") and "\n" not in text and f"(from --set {override})" in text


def test_several_problems_in_one_line():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["train.batch_size=0", "tta.mode=median", "worn.conf=2", "augment.rotate=-1"])
    text = str(err.value)
    assert "\n" not in text and text.count("(from --set") == 3 and text.endswith("; and 1 more")


@pytest.mark.parametrize("override, message", [
    ("train.batch_size=0", "config: train.batch_size=0: must be >= 1 (from --set train.batch_size=0)"),
    ("train.stages=abc", "config: train.stages=abc: item 0 must be a whole number (from --set train.stages=abc)"),
    ("train.schedul=x", "config: train.schedul=x: unknown setting; did you mean train.schedule? "
                        "(from --set train.schedul=x)"),
])
def test_cli_prints_one_line_and_exits_2(override, message, capsys):
    assert main(["train", "--set", override]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].endswith(message), lines
