"""A fold's plots: the LR finder sweep, loss/accuracy curves per epoch, the validation confusion matrix.

Written atomically as PNGs with the Agg backend (no display needed on a training server).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix  # noqa: E402

from fashiontag.core.files import atomic_open  # noqa: E402

log = logging.getLogger(__name__)


def save_fig(fig, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())
    return Path(path)


def plot_lr_find(recorder, suggested: float, path: str | Path) -> Path:
    """fastai's LR-finder plot (loss vs lr, log scale) with the chosen rate marked."""
    recorder.plot_lr_find(skip_end=min(5, max(0, len(recorder.lrs) - 2)))
    fig = plt.gcf()
    ax = fig.axes[0]
    ax.axvline(suggested, color="tab:red", linestyle="--", label=f"chosen lr {suggested:.2e}")
    ax.legend(loc="best")
    ax.set_title("LR finder")
    return save_fig(fig, path)


def plot_curves(rows: Sequence[dict] | pd.DataFrame, path: str | Path) -> Path:
    """Train/valid loss and accuracy per epoch; stage boundaries (image size changes) marked."""
    df = pd.DataFrame(rows)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if len(df):
        ax1.plot(df["epoch"], df["train_loss"], "o-", label="train loss")
        ax1.plot(df["epoch"], df["valid_loss"], "o-", label="valid loss")
        if "train_accuracy" in df and df["train_accuracy"].notna().any():
            ax2.plot(df["epoch"], df["train_accuracy"], "o-", color="tab:blue", label="train accuracy")
        ax2.plot(df["epoch"], df["accuracy"], "o-", color="tab:green", label="valid accuracy")
        for ax in (ax1, ax2):
            for _, first in df.groupby("phase", sort=False).head(1).iloc[1:].iterrows():
                ax.axvline(first["epoch"] - 0.5, color="grey", linestyle=":", linewidth=1)
            ax.set_xlabel("epoch")
            ax.legend(loc="best")
    ax1.set_title("loss")
    ax2.set_title("accuracy")
    return save_fig(fig, path)


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, values: Sequence[str], path: str | Path,
                   title: str = "validation confusion") -> Path:
    """sklearn's confusion-matrix display over the key's values (rows: truth, columns: prediction)."""
    labels = list(range(len(values)))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    size = max(4.0, 0.6 * len(values) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(cm, display_labels=list(values)).plot(ax=ax, colorbar=False, xticks_rotation=45)
    ax.set_title(f"{title} (accuracy {np.trace(cm) / max(1, cm.sum()):.3f})")
    return save_fig(fig, path)
