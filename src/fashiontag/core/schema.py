"""The config schema: every setting's type and allowed values, one model per section, one root per family.

Values live in configs/base.yaml, not here: no field has a default, so a setting missing from base.yaml
(or a typo in an experiment file, refused by extra="forbid") fails at load time instead of being made up
by the code. tests/core/test_schema.py checks that base.yaml and these models name the same fields.

Families: each command reads and saves only the sections of its family, so a classification run's
config.yaml carries no detector or Fashion-MNIST settings.
  classification  train, folds, predict, stack, ensemble, report, tag, worn, demo, clothing
  fmnist          `fashiontag fmnist`: classification + fmnist
  detection       detect-train, detect
"""

from typing import Literal

from fashiontag.core.schema_types import (
    AutoOrInt32,
    Bool,
    Device,
    Int0,
    Int1,
    Lr,
    Prob,
    Section,
    Size,
    Text,
    integer,
    listof,
    num,
)


class Data(Section):
    root: Text
    test_root: Text | None
    folds_dir: Text
    n_folds: integer(ge=2)
    fold_seed: Int0
    skip_bad: Bool
    in_memory: Bool


class Cache(Section):
    dir: Text
    size: Size | None
    resize: Literal["pad", "squish"]
    pad_value: listof(integer(ge=0, le=255), n=3)
    workers: Int1 | None


class Model(Section):
    backbone: Text
    pretrained: Bool
    weights: Text | None
    head_hidden: listof(Int1)
    head_dropout: num(ge=0, lt=1)
    pool: Literal["avg", "concat"]
    feature_layers: listof(integer())
    feature_pools: listof(Literal["avg", "max", "grid2"], min_len=1)


class Train(Section):
    device: Device
    batch_size: Int1
    num_workers: Int0
    precision: Literal["bf16", "fp16", "fp32"]
    channels_last: Bool
    compile: Bool
    lr: Lr
    lr_find: Bool
    lr_find_iters: integer(ge=2)
    lr_find_range: listof(num(gt=0), n=2, ordered=True)
    lr_find_suggest: Literal["valley", "slide", "minimum", "steep"]
    lr_fallback: num(gt=0)
    optimizer: Literal["adam", "sgd"]
    pct_start: Prob
    weight_decay: num(ge=0)
    label_smoothing: num(ge=0, lt=1)
    mixup: num(ge=0)
    cutmix: num(ge=0)
    maybe_weight: num(ge=0, lt=1)
    stages: listof(Size, min_len=1)
    frozen_epochs: Int0
    frozen_schedule: Literal["one_cycle", "sgdr"]
    train_bn: Bool
    unfrozen_epochs: Int0
    schedule: Literal["sgdr", "one_cycle"]
    sgdr_cycle_len: Int1
    sgdr_cycle_mult: integer(ge=2)
    lr_ratios: listof(num(gt=0), n=3)
    stage_lr_mult: num(gt=0)
    feature_cache: Bool
    feature_views: Int1
    trainable_stages: Int0 | None
    prefix_batch_size: Int1 | None
    compile_prefix: Bool
    force: Bool
    progress: Literal["auto", "bar", "log"]
    checkpoint_every_s: num(ge=0)
    validate_epochs: Literal["every", "last"]


class Augment(Section):
    flip: Bool
    zoom: listof(num(gt=0), n=2, ordered=True)
    rotate: num(ge=0, le=180)
    contrast: num(ge=0, lt=1)
    brightness: num(ge=0, lt=1)
    random_resized_crop: listof(num(gt=0, le=1), n=2, ordered=True) | None
    p_affine: Prob
    p_lighting: Prob
    shift: num(ge=0, lt=1)
    erase: Prob


class Tta(Section):
    enabled: Bool
    n_views: Int0
    n_random: Int0
    mode: Literal["mean", "max"]
    flips_only: Bool
    on_oof: Bool


class Stack(Section):
    pool: listof(Literal["avg", "max", "grid2"], min_len=1)
    n_estimators: Int1
    max_depth: Int1
    learning_rate: num(gt=0, le=1)
    early_stopping_rounds: Int1
    inner_valid: num(gt=0, lt=1)
    colsample_bytree: num(gt=0, le=1)
    max_bin: integer(ge=2)
    n_jobs: Int1 | None


class Ensemble(Section):
    method: Literal["mean", "weighted", "geometric", "weighted_geometric", "rank"]
    weights: listof(num(ge=0), min_len=1) | None
    members: listof(Text)
    stack: Bool


class Worn(Section):
    mode: Literal["none", "combined", "separate", "crop"]
    weights: Text
    conf: Prob
    rule: Literal["auto", "evidence", "box"]
    figure_conf: Prob
    figure_aspect: num(gt=0)
    imgsz: AutoOrInt32
    batch: Int1
    device: Device
    save_every: Int1
    crop_margin: num(ge=0)
    out_dir: Text
    group: Literal["worn", "hanger"] | None


class Detect(Section):
    weights: Text
    device: Device
    epochs: Int1
    imgsz: integer(ge=32)
    batch: Int1
    patience: Int0
    workers: Int0
    mosaic: Prob
    warmup_epochs: num(ge=0)
    plots: Bool
    conf: Prob
    iou: Prob
    out_dir: Text


class Fmnist(Section):
    idx_dir: Text
    limit: Int1 | None
    fold: Int0
    plain: Bool
    aug_epochs: Int0
    aug_lr: num(gt=0) | None
    configs: listof(Text)
    embed_limit: Int1 | None
    report: Text


class Report(Section):
    out: Text


class ClassificationConfig(Section):
    seed: Int0
    exp: Text | None
    data: Data
    runs_dir: Text
    cache: Cache
    model: Model
    train: Train
    augment: Augment
    tta: Tta
    stack: Stack
    ensemble: Ensemble
    worn: Worn
    report: Report


class FmnistConfig(ClassificationConfig):
    fmnist: Fmnist


class DetectionConfig(Section):
    seed: Int0
    exp: Text | None
    cache: Cache
    detect: Detect


FAMILIES: dict[str, type[Section]] = {
    "classification": ClassificationConfig,
    "fmnist": FmnistConfig,
    "detection": DetectionConfig,
}
# Commands of each family, for messages that say where a section belongs.
FAMILY_COMMANDS = {
    "classification": "train, predict, stack, ensemble, report, tag, worn, demo, clothing",
    "fmnist": "fmnist",
    "detection": "detect-train, detect",
}


def sections(family: str) -> list[str]:
    """Top-level names of a family's config, in base.yaml order."""
    return list(FAMILIES[family].model_fields)


def family_of_section(name: str) -> str | None:
    """The first family whose config has top-level `name` (None when no family has it)."""
    return next((f for f, model in FAMILIES.items() if name in model.model_fields), None)


def validate(cfg: dict, family: str) -> dict:
    """Validate a whole config against its family; the plain nested dict back (numbers as written).

    Raises pydantic.ValidationError; core.config turns it into a one-line ConfigError.
    """
    return FAMILIES[family].model_validate(cfg).model_dump()
