"""Synthetic run directories for the tests of stages that only read run files (blend, report, submit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from fashiontag.fashionai.format import label_string
from fashiontag.fashionai.probs import with_probs

KEY = "skirt_length_labels"
N_VALUES = 6


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def truth(n_rows: int = 60, n_values: int = N_VALUES, n_folds: int = 3, seed: int = 0) -> pd.DataFrame:
    """image, key, fold, label, y for `n_rows` images; folds assigned round-robin."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_values, n_rows)
    return pd.DataFrame({
        "image": [f"Images/{KEY}/img{i:03d}.jpg" for i in range(n_rows)],
        "key": KEY,
        "fold": np.arange(n_rows) % n_folds,
        "label": [label_string(int(v), n_values) for v in y],
        "y": y,
    })


def make_run(runs: Path, name: str, quality: float, seed: int, table: pd.DataFrame | None = None,
             n_test: int = 10, key: str = KEY) -> Path:
    """A training-like run: <name>/<key>/{oof.csv, folds.csv, config.yaml, test.csv}.

    Probabilities are softmax(quality * onehot(y) + noise): a larger quality is a better run.
    """
    table = truth() if table is None else table
    rng = np.random.default_rng(seed)
    n = len(table["label"].iloc[0])
    logits = quality * np.eye(n)[table["y"].to_numpy()] + rng.normal(0, 1, (len(table), n))
    kdir = runs / name / key
    kdir.mkdir(parents=True)
    oof = with_probs(table[["image", "key", "fold", "label"]].assign(key=key), softmax(logits))
    oof.to_csv(kdir / "oof.csv", index=False)
    oof[["image", "key", "fold"]].to_csv(kdir / "folds.csv", index=False)
    (kdir / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "exp": name}))
    if n_test:
        test_ids = pd.DataFrame({"image": [f"Images/{key}/test{i:03d}.jpg" for i in range(n_test)], "key": key})
        with_probs(test_ids, softmax(rng.normal(0, 1, (n_test, n)))).to_csv(kdir / "test.csv", index=False)
    return runs / name
