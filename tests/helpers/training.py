"""Shared helpers of the training tests: tiny configs, datasets, caches and learners.

Everything is CPU, resnet10t without pretrained weights, 32-48 px, a dozen generated images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fashiontag.core.config import load_config

KEY = "garment_type_labels"
VALUES = ["coat", "dress", "shirt"]


def tiny_overrides(tmp_path: Path, *extra: str) -> list[str]:
    """Overrides that make any config a seconds-long CPU run with every output under tmp_path."""
    base = [
        "model.backbone=resnet10t", "model.pretrained=false", "train.stages=[32]", "train.batch_size=4",
        "train.num_workers=0", "train.lr=1e-3", "train.lr_find=false", "train.frozen_epochs=1",
        "train.unfrozen_epochs=1", "train.schedule=one_cycle", "train.progress=log", "data.n_folds=2",
        "train.compile=false", "train.compile_prefix=false",  # compiling takes longer than these runs
        f"runs_dir={tmp_path / 'runs'}", f"cache.dir={tmp_path / 'cache'}", f"data.folds_dir={tmp_path / 'folds'}",
    ]
    # `extra` replaces a default of the same key, so each key is set once.
    merged = {s.split("=", 1)[0]: s for s in base}
    merged.update({s.split("=", 1)[0]: s for s in extra})
    return list(merged.values())


def tiny_config(tmp_path: Path, *extra: str) -> dict:
    torch.set_num_threads(1)  # the test machine is small and shared
    return load_config(None, tiny_overrides(tmp_path, *extra))


def tiny_root(make_fashionai_root, tmp_path: Path, per_value: int = 4, maybe_every: int = 0) -> Path:
    return make_fashionai_root(tmp_path / "data" / "train", keys={KEY: VALUES}, per_value=per_value,
                               maybe_every=maybe_every)


def write_images(folder: Path, n: int, size: tuple[int, int] = (20, 12)) -> list[Path]:
    """n small random JPEGs (distinct content)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"img{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def tiny_learner(tmp_path: Path, n_train: int = 8, size: int = 32, bs: int = 4, train_over: dict | None = None):
    """A Learner (our make_learner) over a cache of n_train + 4 generated images; returns (learn, cfg)."""
    from fashiontag.data.cache import build_cache
    from fashiontag.data.loaders import fold_dataloaders, soft_targets
    from fashiontag.models.build import build_model, head_spec
    from fashiontag.train.learner import make_learner

    cfg = tiny_config(tmp_path)
    cfg["train"].update(train_over or {})
    paths = write_images(tmp_path / "imgs", n_train + 4)
    cache = build_cache(paths, size, tmp_path / "cache", workers=1)
    labels = ["ynn", "nyn", "nny"] * ((len(paths) + 2) // 3)
    targets = soft_targets(labels[: len(paths)])
    dls = fold_dataloaders(cache, targets, range(n_train), range(n_train, n_train + 4), size, [0.5] * 3,
                           [0.25] * 3, cfg["augment"], bs, torch.device("cpu"))
    model, _ = build_model("resnet10t", 3, head_spec(cfg["model"]))
    learn = make_learner(model, dls, cfg["train"], tmp_path, torch.device("cpu"))
    from fashiontag.train.progress import set_progress

    set_progress(learn, bars=False)
    return learn, cfg
