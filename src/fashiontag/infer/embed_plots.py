"""2-D views of embeddings: sklearn PCA and t-SNE scatter plots coloured by class, saved as PNG."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fashiontag.core.figures import (  # Agg backend and atomic PNG writes, shared with the training plots
    plt,
    save_fig,
)

log = logging.getLogger(__name__)

MAX_LEGEND = 20


def scatter(points: np.ndarray, labels: Sequence[str] | None, title: str, path: Path) -> Path:
    """One point per image; one colour per class (legend), or a single colour without labels."""
    fig, ax = plt.subplots(figsize=(7, 6))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=8, alpha=0.7)
    else:
        classes = sorted(set(labels))
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        arr = np.asarray(labels, dtype=object)
        for i, cls in enumerate(classes):
            sel = arr == cls
            ax.scatter(points[sel, 0], points[sel, 1], s=8, alpha=0.7, color=cmap(i % cmap.N),
                       label=cls if i < MAX_LEGEND else None)
        ax.legend(loc="best", fontsize=7, markerscale=2, frameon=True)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return save_fig(fig, path)


def plot_embeddings(feats: np.ndarray, labels: Sequence[str] | None, out: Path, title: str = "",
                    seed: int = 0) -> list[Path]:
    """pca.png and tsne.png of `feats` (N, C) in `out`."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = len(feats)
    if n < 2:
        raise ValueError("need at least 2 embeddings to plot")
    pca = PCA(n_components=2, random_state=seed).fit(feats)
    ratio = pca.explained_variance_ratio_
    paths = [scatter(pca.transform(feats), labels,
                     f"PCA {title} ({100 * ratio[0]:.0f}% + {100 * ratio[1]:.0f}% variance)", out / "pca.png")]
    # t-SNE needs perplexity < n; 30 is sklearn's default for real sets.
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(feats)
    paths.append(scatter(points, labels, f"t-SNE {title} (perplexity {perplexity:g})", out / "tsne.png"))
    return paths
