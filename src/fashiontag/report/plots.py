"""Report figures: confusion matrices (PNG, written atomically) and the most confused value pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix

from fashiontag.core.files import atomic_open


def confusion(y: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts: rows the true value, columns the predicted one."""
    return confusion_matrix(y, pred, labels=list(range(n)))


def most_confused(cm: np.ndarray, values: list[str], top: int = 3) -> list[tuple[str, str, int]]:
    """The largest off-diagonal cells as (true name, predicted name, count), largest first."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")[:top]
    pairs = []
    for idx in flat:
        i, j = np.unravel_index(idx, off.shape)
        if off[i, j] > 0:
            pairs.append((values[i], values[j], int(off[i, j])))
    return pairs


def save_confusion_png(cm: np.ndarray, values: list[str], title: str, path: str | Path) -> Path:
    """Plot `cm` with value names (sklearn's display) and save it atomically."""
    import matplotlib

    matplotlib.use("Agg")  # reports are written on headless machines
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(4.0, 0.6 * len(values) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size))
    try:
        ConfusionMatrixDisplay(cm, display_labels=values).plot(
            ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45, values_format="d")
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=90)
    finally:
        plt.close(fig)
    return Path(path)
