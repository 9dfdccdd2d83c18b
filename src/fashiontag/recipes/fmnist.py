"""`fashiontag fmnist`: the Fashion-MNIST write-ups' table on the project's own pipeline.

For each experiment config of `fmnist.configs` (the default config, configs/fmnist.yaml, names the 1-, 3-
and 4-conv CNNs; empty = the given config alone):
1. import the idx files (data/idx.py) into data.root's parent, once;
2. the plain phase: train the model on the holdout fold (data.n_folds 5, fold 0: the write-ups' 80/20 split
   of the 60k) with augmentation off (fmnist.plain: false trains this run with the config's augment
   section instead), through `train.runner.train_run` like any run;
3. the augmentation phase (fmnist.aug_epochs > 0): run `<exp>_aug` continues from the plain run's whole
   model (its model.pth, body and head: train/init_weights.py) at peak rate fmnist.aug_lr, with the config's
   augment section (rotation, shift, zoom);
4. the 10k test set, scored once per run after training (model selection only ever sees the validation
   fold): `infer.predict.predict_run` (TTA per the config), then test accuracy, log loss and the test
   confusion matrix into <run>/<key>/test_metrics.json and test_confusion.png.
Then the run with the best validation accuracy embeds the test set (TensorBoard projector files, PCA and
t-SNE plots) and report/fmnist.py writes reports/fmnist.md and reports/fmnist_results.json.
With data.in_memory (the Fashion-MNIST configs) training and prediction read one in-memory uint8 tensor.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fashiontag.core.errors import FashiontagError
from fashiontag.core.files import atomic_write_json, make_dirs, read_json
from fashiontag.data.idx import ANSWERS_CSV, CLASSES, KEY, OFFICIAL_COUNTS, import_idx
from fashiontag.fashionai.metric import key_metrics
from fashiontag.fashionai.probs import probs_of

log = logging.getLogger(__name__)

# The plain phase trains without augmentation (the write-ups' first epochs).
NO_AUGMENT = {"flip": False, "rotate": 0, "zoom": [1.0, 1.0], "shift": 0.0, "contrast": 0.0, "brightness": 0.0,
              "random_resized_crop": None, "erase": 0.0}


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
    import_idx(f["idx_dir"], dst, limit=f["limit"], test_limit=OFFICIAL_COUNTS["test"])
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


def phase_configs(cfg: dict, exp: str) -> list[tuple[str, dict]]:
    """[(phase, run config)]: the plain run (or one augmented run with fmnist.plain false), then `<exp>_aug`
    from its weights when fmnist.aug_epochs > 0."""
    f, fold = cfg["fmnist"], int(cfg["fmnist"]["fold"])
    first = copy.deepcopy(cfg)
    first["exp"] = exp
    if f["plain"]:
        first["augment"].update(NO_AUGMENT)
        # A model that never saw a mirrored or shifted image scores worse on TTA's views than on the photo
        # alone (fmnist_cnn3, 6 plain epochs: test 0.859 with flip TTA against 0.902 without), so TTA is for
        # the augmented phase only.
        first["tta"]["enabled"] = False
    runs = [("plain" if f["plain"] else "augmented", first)]
    if int(f["aug_epochs"]) > 0:
        second = copy.deepcopy(cfg)
        second["exp"] = f"{exp}_aug"
        second["model"]["pretrained"] = True
        second["model"]["weights"] = str(Path(cfg["runs_dir"]) / exp / KEY / f"fold_{fold}" / "model.pth")
        second["train"].update(frozen_epochs=0, unfrozen_epochs=int(f["aug_epochs"]))
        if f["aug_lr"] is not None:
            second["train"]["lr"] = float(f["aug_lr"])
        runs.append(("augmented", second))
    return runs


def run_config(cfg: dict, name: str) -> list[dict]:
    """Train and test-score one experiment config (its phases); one result row per run."""
    from fashiontag.infer.predict import predict_run
    from fashiontag.train.init_weights import StartFrom
    from fashiontag.train.runner import train_run

    dst = ensure_imported(cfg)
    _, train_root, test_root = dataset_dirs(cfg)
    fold = int(cfg["fmnist"]["fold"])
    rows = []
    for phase, run_cfg in phase_configs(cfg, str(cfg["exp"] or name)):
        exp = run_cfg["exp"]
        t0 = time.time()
        # The augmented phase keeps training the plain run's whole model (head included), as the write-ups do.
        cbs = (StartFrom(run_cfg["model"]["weights"]),) if phase == "augmented" and run_cfg["model"]["weights"] else ()
        key_dir = train_run(train_root, KEY, str(fold), run_cfg, extra_cbs=cbs).run_dir / KEY
        predict_run(key_dir.parent, test_root, run_cfg, keys=[KEY])
        test = score_test(key_dir, dst / ANSWERS_CSV)
        done = read_json(key_dir / f"fold_{fold}" / "done.json")
        cv = read_json(key_dir / "cv.json")
        rows.append({
            "name": exp, "config": name, "model": run_cfg["model"]["backbone"], "phase": phase,
            "test_accuracy": round(float(test["accuracy"]), 4), "test_log_loss": round(float(test["log_loss"]), 4),
            "valid_accuracy": round(float(cv["accuracy"]), 4), "epochs": int(done["epochs"]),
            "seconds": round(time.time() - t0, 1), "train_seconds": float(done["seconds"]),
            "tta": bool(run_cfg["tta"]["enabled"]), "run": str(key_dir),
        })
        log.info("%s (%s, %s): valid %.4f, TEST accuracy %.4f log loss %.4f, %d epochs, %.0fs", exp, name, phase,
                 rows[-1]["valid_accuracy"], rows[-1]["test_accuracy"], rows[-1]["test_log_loss"],
                 rows[-1]["epochs"], rows[-1]["seconds"])
    return rows


def run_fmnist(cfg: dict, config_arg: str | None, load_config, overrides: list[str]) -> list[dict]:
    """Every config of fmnist.configs (or `cfg` alone), then the best run's embeddings and the report.

    load_config(name, overrides) loads each listed config with the command's --set overrides.
    Returns the result rows of this invocation.
    """
    from fashiontag.report.fmnist import write_report

    names = list(cfg["fmnist"]["configs"])
    configs = [(n, load_config(n, overrides)) for n in names] if names else [(Path(config_arg or "base").stem, cfg)]
    rows: list[dict] = []
    for name, sub in configs:
        if names and sub["fmnist"]["configs"]:
            raise FashiontagError(f"config {name} lists fmnist.configs itself; list only single-model configs")
        rows += run_config(sub, name)
    best = max(rows, key=lambda r: r["valid_accuracy"])
    log.info("best by validation accuracy: %s (valid %.4f, test %.4f)", best["name"], best["valid_accuracy"],
             best["test_accuracy"])
    embed_dir = embed_test(cfg, best)
    write_report(rows, best, embed_dir, Path(cfg["fmnist"]["report"]))
    return rows


def embed_test(cfg: dict, best: dict) -> Path:
    """The best run's penultimate embeddings of the whole test set, labelled with the test answers: the
    TensorBoard projector files, and PCA / t-SNE plots of a seeded sample of fmnist.embed_limit images
    (t-SNE of all 10k takes minutes on a small CPU; the projector computes its own from the files)."""
    from fashiontag.infer.embed import compute_embeddings, resolve_fold_dir, sample, write_projector
    from fashiontag.infer.embed_plots import plot_embeddings

    dst, _, test_root = dataset_dirs(cfg)
    out = make_dirs(Path(cfg["fmnist"]["report"]).with_suffix("") / "embed" / best["name"])
    answers = pd.read_csv(dst / ANSWERS_CSV, header=None, names=["image", "key", "label"], dtype=str)
    items = pd.DataFrame({"image": answers["image"], "label": [CLASSES[s.index("y")] for s in answers["label"]]})
    fold_dir = resolve_fold_dir(best["run"])
    feats, kept = compute_embeddings(fold_dir, [str(test_root / i) for i in items["image"]],
                                     int(cfg["train"]["batch_size"]), str(cfg["train"]["device"]), cfg["cache"]["dir"])
    items = items.iloc[kept].reset_index(drop=True)
    write_projector(out, feats, items, f"{best['model']} {best['name']} test set")
    shown = sample(items.assign(row=np.arange(len(items))), cfg["fmnist"]["embed_limit"], int(cfg["seed"]))
    plot_embeddings(feats[shown["row"].to_numpy()], list(shown["label"]), out,
                    title=f"{best['name']}, {len(shown)} test images", seed=int(cfg["seed"]))
    log.info("test-set embeddings of %s: %d x %d -> %s (plots of %d)", best["name"], *feats.shape, out, len(shown))
    return out
