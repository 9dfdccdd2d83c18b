"""`fashiontag fmnist`: the Fashion-MNIST write-ups' recipe on the project's own pipeline.

1. import the idx files (data/idx.py) into data.root's parent, once;
2. step 1: train the config's model on the holdout fold (data.n_folds 5, fold 0: the write-ups' 80/20
   split of the 60k) with augmentation off, through `train.runner.train_run` like any run;
3. step 2 (fmnist.aug_epochs > 0): run `<exp>_aug` starts from step 1's weights (model.weights: its
   model.pth; the body is carried over, the small head re-learnt) and trains with the config's augment
   section (rotation / shift via zoom centre / zoom);
4. the 10k test set, used only here: `infer.predict.predict_run`, then test accuracy, log loss and the
   test confusion matrix (train/plots.py) into <run>/<key>/test_metrics.json and test_confusion.png.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from fashiontag.core.errors import FashiontagError
from fashiontag.core.files import atomic_write_json
from fashiontag.data.idx import ANSWERS_CSV, CLASSES, KEY, OFFICIAL_COUNTS, import_idx
from fashiontag.fashionai.metric import key_metrics
from fashiontag.fashionai.probs import probs_of

log = logging.getLogger(__name__)

# Step 1 trains without augmentation (the write-ups' first 10 epochs).
NO_AUGMENT = {"flip": False, "rotate": 0, "zoom": [1.0, 1.0], "contrast": 0.0, "brightness": 0.0,
              "random_resized_crop": None}


def dataset_dirs(cfg: dict) -> tuple[Path, Path, Path]:
    """(import destination, train root, test root): data.root must be <dst>/train, data.test_root <dst>/test."""
    train_root = Path(cfg["data"]["root"])
    dst = train_root.parent
    test_root = Path(cfg["data"]["test_root"])
    if train_root.name != "train" or test_root != dst / "test":
        raise FashiontagError(f"fmnist needs data.root=<dir>/train and data.test_root=<dir>/test (the import "
                              f"layout); got {train_root} and {test_root}")
    return dst, train_root, test_root


def ensure_imported(cfg: dict) -> Path:
    """Import the idx files unless data.root already holds an import; returns the destination."""
    dst, train_root, _ = dataset_dirs(cfg)
    if (train_root / "Annotations" / "label.csv").exists():
        log.info("using the existing import in %s (delete it to re-import)", dst)
        return dst
    f = cfg["fmnist"]
    # The limit is for quick training runs; the test figure is always on the whole test set.
    import_idx(f["idx_dir"], dst, limit=f.get("limit"), test_limit=OFFICIAL_COUNTS["test"])
    return dst


def score_test(key_dir: Path, answers: Path) -> dict:
    """Accuracy, log loss (and the official mAP) of the run's test.csv against the answers; confusion PNG."""
    from fashiontag.core.figures import plot_confusion

    test = pd.read_csv(key_dir / "test.csv", dtype={"image": str, "key": str})
    labels = pd.read_csv(answers, header=None, names=["image", "key", "label"], dtype=str)
    merged = test.merge(labels, on=["image", "key"], how="left", validate="one_to_one")
    if merged["label"].isna().any():
        missing = merged.loc[merged["label"].isna(), "image"].iloc[0]
        raise FashiontagError(f"{answers}: no answer for {missing} (imported with a different --limit?)")
    probs = probs_of(merged, len(CLASSES))
    metrics = key_metrics(probs, list(merged["label"]))
    y = np.array([lab.index("y") for lab in merged["label"]])
    plot_confusion(y, probs.argmax(axis=1), CLASSES, key_dir / "test_confusion.png", title="test confusion")
    atomic_write_json(key_dir / "test_metrics.json", {"answers": str(answers), **metrics})
    log.info("%s: TEST accuracy %.4f log_loss %.4f (n=%d) -> %s", key_dir.parent.name, metrics["accuracy"],
             metrics["log_loss"], metrics["n"], key_dir / "test_metrics.json")
    return metrics


def run_fmnist(cfg: dict, config_arg: str | None = None) -> dict:
    """Import, step 1, step 2, test score; returns {run name: test metrics}."""
    from fashiontag.infer.predict import predict_run
    from fashiontag.train.runner import exp_name, train_run

    dst = ensure_imported(cfg)
    _, train_root, test_root = dataset_dirs(cfg)
    fold = str(int(cfg["fmnist"]["fold"]))
    results: dict[str, dict] = {}

    step1 = copy.deepcopy(cfg)
    step1["exp"] = exp_name(cfg, config_arg)
    step1["augment"].update(NO_AUGMENT)
    train_run(train_root, KEY, fold, step1)
    runs = [step1]

    aug_epochs = int(cfg["fmnist"]["aug_epochs"])
    if aug_epochs > 0:
        step2 = copy.deepcopy(cfg)
        step2["exp"] = f"{step1['exp']}_aug"
        step2["model"]["pretrained"] = True
        step2["model"]["weights"] = str(Path(step1["runs_dir"]) / step1["exp"] / KEY / f"fold_{fold}" / "model.pth")
        step2["train"].update(frozen_epochs=0, unfrozen_epochs=aug_epochs)
        train_run(train_root, KEY, fold, step2)
        runs.append(step2)

    for run_cfg in runs:
        run_dir = Path(run_cfg["runs_dir"]) / run_cfg["exp"]
        predict_run(run_dir, test_root, run_cfg, keys=[KEY])
        results[run_cfg["exp"]] = score_test(run_dir / KEY, dst / ANSWERS_CSV)
    return results
