"""Tiny trained-like runs with real fold models (timm `test_efficientnet`, random weights) on generated images.

They have the files `fashiontag train` writes (docs/ARCHITECTURE.md), so predict/stack/tag read them as
they would a real run; nothing here is trained (speed), the tests check plumbing and invariants.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from fashiontag.core.config import load_config, save_config
from fashiontag.core.files import atomic_write_json
from fashiontag.fashionai.format import label_string, write_labels, write_questions
from fashiontag.fashionai.probs import with_probs
from fashiontag.models.build import build_model, model_state
from helpers.runs import softmax

BACKBONE = "test_efficientnet"
HEAD = {"hidden": [8], "dropout": 0.0, "pool": "avg"}


def write_images(root: Path, key: str, names: list[str], size: int = 24, seed: int = 0) -> list[str]:
    """Random-colour PNGs with a bright left or right half; returns the paths relative to root."""
    rng = np.random.default_rng(seed)
    rel = []
    for i, name in enumerate(names):
        arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8) // 4
        half = slice(0, size // 2) if i % 2 else slice(size // 2, size)
        arr[:, half] += 150
        path = root / "Images" / key / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(path)
        rel.append(f"Images/{key}/{name}.png")
    return rel


def make_trained_run(tmp: Path, key: str = "skirt_length_labels", n_values: int = 6, n_train: int = 12,
                     n_folds: int = 2, n_test: int = 5, size: int = 32, seed: int = 0,
                     overrides: tuple[str, ...] = ()) -> dict:
    """runs/cnn/<key>/ with n_folds finished folds; returns paths and the resolved config."""
    torch.manual_seed(seed)
    train_root, test_root = tmp / "train", tmp / "test"
    images = write_images(train_root, key, [f"tr{i:03d}" for i in range(n_train)], seed=seed)
    y = np.arange(n_train) % n_values
    labels = pd.DataFrame({"image": images, "key": key, "label": [label_string(int(v), n_values) for v in y]})
    write_labels(train_root, labels)
    test_images = write_images(test_root, key, [f"te{i:03d}" for i in range(n_test)], seed=seed + 1)
    write_questions(test_root, pd.DataFrame({"image": test_images, "key": key}))
    cfg = load_config(overrides=[
        f"data.root={train_root}", f"data.test_root={test_root}", f"cache.dir={tmp / 'cache'}",
        f"runs_dir={tmp / 'runs'}", "train.batch_size=4", "train.num_workers=0", "train.device=cpu",
        "tta.n_views=4", "tta.n_random=2", f"train.stages=[{size}]", *overrides,
    ])
    key_dir = tmp / "runs" / "cnn" / key
    folds = np.arange(n_train) % n_folds
    table = labels.assign(fold=folds)
    save_config(cfg, key_dir / "config.yaml")
    table[["image", "key", "fold"]].to_csv(key_dir / "folds.csv", index=False)
    rng = np.random.default_rng(seed)
    oofs = []
    for k in range(n_folds):
        fdir = key_dir / f"fold_{k}"
        fdir.mkdir(parents=True)
        model, tcfg = build_model(BACKBONE, n_values, HEAD)
        torch.save(model_state(model), fdir / "model.pth")
        atomic_write_json(fdir / "preprocess.json", {
            "backbone": BACKBONE, "key": key, "values": [f"val{j}" for j in range(n_values)], "n_out": n_values,
            "size": size, "cache_size": size, "resize": "pad", "pad_value": [124, 116, 104],
            "mean": list(tcfg["mean"]), "std": list(tcfg["std"]), "head": HEAD, "augment": cfg["augment"],
            "fold": k, "weights": "random init",
        })
        part = table[table["fold"] == k]
        oof = with_probs(part[["image", "key", "fold", "label"]], softmax(rng.normal(0, 1, (len(part), n_values))))
        oof.to_csv(fdir / "oof.csv", index=False)
        atomic_write_json(fdir / "done.json", {"key": key, "fold": k})
        oofs.append(oof)
    pd.concat(oofs).to_csv(key_dir / "oof.csv", index=False)
    return {"cfg": cfg, "key_dir": key_dir, "run": key_dir.parent, "train_root": train_root,
            "test_root": test_root, "table": table, "key": key}
