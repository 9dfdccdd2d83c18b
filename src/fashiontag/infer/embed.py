"""`embed`: penultimate embeddings of a trained fold for a set of images, for the TensorBoard Embedding
Projector (tensors.tsv, metadata.tsv, projector_config.pbtxt) and PCA / t-SNE scatter plots (embed_plots).

The embedding is `model[0](x)` (the body's final feature map, as the stacker reads it) average-pooled to
one vector per image by the one feature extractor (models/features.py), computed with the fold's own
preprocessing (`data.loaders.test_dataloader`).
Images come from a FashionAI training root (labelled with the fold's key), a test root (question.csv),
class folders (label = folder name) or a plain folder of images (no label).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fashiontag.core.errors import FashiontagError
from fashiontag.core.files import atomic_write_text
from fashiontag.core.skips import SkipReport
from fashiontag.data.images import is_image_file
from fashiontag.fashionai.format import LABEL_CSV, QUESTION_CSV, read_attributes, read_labels, read_questions
from fashiontag.fashionai.runs import fold_dirs, list_keys

log = logging.getLogger(__name__)


def resolve_fold_dir(run: str | Path, cat: str | None = None, fold: int | None = None) -> Path:
    """A fold dir from a fold dir, a key dir (its lowest finished fold) or a run dir (needs --cat if >1 key)."""
    path = Path(run)
    if not path.is_dir():
        raise FashiontagError(f"run not found: {path}")
    if (path / "preprocess.json").exists():
        return path
    if not fold_dirs(path):
        keys = list_keys(path)
        if cat is None and len(keys) != 1:
            raise FashiontagError(f"{path} has keys {keys}: pass --cat to choose one")
        chosen = cat or keys[0]
        matches = [k for k in keys if k in (chosen, f"{chosen}_labels")]
        if not matches:
            raise FashiontagError(f"{path} has no key {chosen!r} (it has {keys})")
        path = path / matches[0]
    done = {k: d for k, d in fold_dirs(path).items() if (d / "done.json").exists()}
    if not done:
        raise FashiontagError(f"{path}: no finished fold (train it first)")
    if fold is None:
        return done[min(done)]
    if fold not in done:
        raise FashiontagError(f"{path}: fold {fold} is not finished (finished: {sorted(done)})")
    return done[fold]


def collect_items(source: str | Path, key: str, values: list[str]) -> pd.DataFrame:
    """DataFrame[path, image, label] for a FashionAI root, a test root, class folders or an image folder."""
    root = Path(source)
    if (root / LABEL_CSV).exists():
        labels = read_labels(root, read_attributes(root))
        labels = labels[labels["key"] == key]
        if labels.empty:
            raise FashiontagError(f"{root / LABEL_CSV} has no rows of the model's key {key}")
        return pd.DataFrame({"path": [str(root / i) for i in labels["image"]], "image": labels["image"].to_numpy(),
                             "label": [values[y] for y in labels["y"]]})
    if (root / QUESTION_CSV).exists():
        questions = read_questions(root, read_attributes(root))
        questions = questions[questions["key"] == key]
        return pd.DataFrame({"path": [str(root / i) for i in questions["image"]],
                             "image": questions["image"].to_numpy(), "label": None})
    if not root.is_dir():
        raise FashiontagError(f"images not found: {root} (a FashionAI root, class folders or an image folder)")
    files = sorted(p for p in root.rglob("*") if is_image_file(p))
    if not files:
        raise FashiontagError(f"{root}: no image files found")
    rel = [p.relative_to(root) for p in files]
    # Class folders: every image sits exactly one folder deep.
    labelled = all(len(r.parts) == 2 for r in rel)
    return pd.DataFrame({"path": list(map(str, files)), "image": [r.as_posix() for r in rel],
                         "label": [r.parts[0] for r in rel] if labelled else None})


def sample(items: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """A seeded random subset (every class keeps its share on average), in the original order."""
    if limit is None or len(items) <= limit:
        return items.reset_index(drop=True)
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return items.iloc[keep].reset_index(drop=True)


@torch.no_grad()
def compute_embeddings(fold_dir: Path, paths: list[str], batch_size: int = 64, device: str = "auto",
                       cache_dir: str | Path = "cache", skips: SkipReport | None = None) -> tuple[np.ndarray, list[int]]:
    """(N_kept, C) float32 pooled body features and the kept indices of `paths`."""
    from fashiontag.core.devices import resolve_device
    from fashiontag.data.loaders import test_dataloader
    from fashiontag.models.build import load_fold_model
    from fashiontag.models.features import extract_features

    dev = resolve_device(device)
    model, pre = load_fold_model(fold_dir, dev)
    dl = test_dataloader(paths, pre, batch_size=batch_size, device=dev, cache_dir=cache_dir,
                         skips=skips if skips is not None else SkipReport(skip=False))
    out = extract_features(model[0], dl, dev, ["avg"])  # empty when no image was readable
    return (out[0] if out else np.zeros((0, 0), dtype=np.float32)), list(dl.kept)


def write_projector(out: Path, feats: np.ndarray, meta: pd.DataFrame, name: str) -> None:
    """TensorBoard projector files; metadata.tsv has a header row only when it has more than one column."""
    atomic_write_text(out / "tensors.tsv", "\n".join("\t".join(f"{v:.6g}" for v in row) for row in feats) + "\n")
    clean = meta.astype(str).apply(lambda col: col.str.replace(r"[\t\n\r]", " ", regex=True))
    if clean.shape[1] > 1:
        lines = ["\t".join(clean.columns)] + ["\t".join(r) for r in clean.itertuples(index=False)]
    else:
        lines = list(clean.iloc[:, 0])
    atomic_write_text(out / "metadata.tsv", "\n".join(lines) + "\n")
    atomic_write_text(out / "projector_config.pbtxt",
                      f'embeddings {{\n  tensor_name: "{name}"\n  tensor_path: "tensors.tsv"\n'
                      f'  metadata_path: "metadata.tsv"\n}}\n')


def embed(run: str | Path, images: str | Path, out: str | Path | None = None, limit: int | None = None,
          cat: str | None = None, fold: int | None = None, seed: int = 0, skip_bad: bool = False,
          force: bool = False, batch_size: int = 64, device: str = "auto", cache_dir: str | Path = "cache") -> dict:
    """Embeddings of `images` by a trained fold, projector files and PCA/t-SNE plots in `out`; returns a summary."""
    from fashiontag.infer.embed_plots import plot_embeddings
    from fashiontag.models.build import load_preprocess

    fold_dir = resolve_fold_dir(run, cat, fold)
    pre = load_preprocess(fold_dir)
    out = Path(out) if out else fold_dir.parent / "embed" / Path(images).resolve().name
    if (out / "tensors.tsv").exists() and not force:
        raise FashiontagError(f"{out / 'tensors.tsv'} already exists; pass --force or another --out")
    items = sample(collect_items(images, pre["key"], list(pre["values"])), limit, seed)
    skips = SkipReport(skip=skip_bad)
    feats, kept = compute_embeddings(fold_dir, list(items["path"]), batch_size, device, cache_dir, skips)
    skips.write(out / "skipped.csv")
    items = items.iloc[kept].reset_index(drop=True)
    if len(items) < 2:
        raise FashiontagError(f"only {len(items)} readable image(s) in {images}: need at least 2 to embed")
    meta = items[["image", "label"]] if items["label"].notna().all() else items[["image"]]
    name = f"{pre['backbone']} {pre['key']} fold {pre['fold']}"
    write_projector(out, feats, meta, name)
    labels = list(items["label"]) if items["label"].notna().all() else None
    plots = plot_embeddings(feats, labels, out, title=name, seed=seed)
    log.info("%d embeddings of dimension %d -> %s (TensorBoard: tensorboard --logdir %s, or load tensors.tsv "
             "and metadata.tsv at projector.tensorflow.org)", len(feats), feats.shape[1], out, out)
    return {"fold_dir": str(fold_dir), "out": str(out), "n": len(feats), "dim": int(feats.shape[1]),
            "skipped": len(skips), "plots": [str(p) for p in plots]}
