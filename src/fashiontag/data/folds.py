"""Cross-validation folds: written once per dataset to folds/<dataset>.csv and never silently regenerated,
so every run, stack and blend of a dataset is compared on the same split.

Per key: sklearn's StratifiedGroupKFold, stratified by the label index y, grouped by the md5 of the image
bytes so exact duplicate images never sit on both sides of a split. Keys are split independently (an
image labelled under two keys may be in different folds for each), with the same seed.

File name rule (`folds_path`): <dataset> is the data root folder's name; when that name is generic
(train, test, valid, data, ...) the parent folder's name is prefixed: data/demo/train -> demo_train.csv,
/tmp/cs -> cs.csv.
"""

from __future__ import annotations

import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from fashiontag.core.errors import DataError, FashiontagError, os_error_reason
from fashiontag.core.files import OutputExistsError, atomic_write_text, file_md5
from fashiontag.fashionai.fold_file import FOLD_COLUMNS, read_fold_file

log = logging.getLogger(__name__)

GENERIC_ROOT_NAMES = {
    "train", "training", "trainval", "test", "tests", "val", "valid", "validation", "data", "dataset",
    "images", "labelled", "labeled", "round1", "round2",
}


def dataset_name(root: str | Path) -> str:
    """The data root's folder name, with its parent's prefixed when the name is generic (see module doc)."""
    root = Path(root).resolve()
    if root.name.lower() in GENERIC_ROOT_NAMES and root.parent.name:
        return f"{root.parent.name}_{root.name}"
    return root.name


def folds_path(cfg_or_root: dict | str | Path, folds_dir: str | Path | None = None) -> Path:
    """<folds_dir>/<dataset>.csv for a resolved config (data.root, data.folds_dir), or for a data root and
    the folds folder (the config's data.folds_dir: the code keeps no default of its own)."""
    if isinstance(cfg_or_root, dict):
        data = cfg_or_root["data"]
        root, folds_dir = data["root"], folds_dir or data["folds_dir"]
    elif folds_dir is None:
        raise TypeError("folds_path(root, folds_dir): name the folds folder (config data.folds_dir)")
    else:
        root = cfg_or_root
    return Path(folds_dir) / f"{dataset_name(root)}.csv"


def _md5_or_error(path: Path) -> str | OSError:
    try:
        return file_md5(path)
    except OSError as exc:
        return exc


def content_hashes(root: str | Path, labels: pd.DataFrame, workers: int | None = None,
                   skip_missing: bool = False) -> pd.Series:
    """md5 of every distinct labelled image (indexed by the image column); a missing file names its line.

    With `skip_missing` (training with --skip-bad) a missing or unreadable file gets a group of its own
    instead: it still has a fold, so the fold file matches the labels, and the image cache then skips and
    reports it like any other bad image.
    """
    root = Path(root)
    first = labels.drop_duplicates("image")
    lines = first["line"] if "line" in first.columns else [None] * len(first)
    paths = [root / img for img in first["image"]]
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        hashes = list(pool.map(_md5_or_error, paths))
    n_bad = 0
    for i, (image, line, path) in enumerate(zip(first["image"], lines, paths, strict=True)):
        error = hashes[i]
        if not isinstance(error, OSError):
            continue
        if not skip_missing:
            where = f" (label.csv line {line})" if line is not None else ""
            reason = ("image file is missing" if isinstance(error, FileNotFoundError)
                      else f"image file cannot be read: {os_error_reason(error)}")
            raise DataError(path, f"{reason}{where}")
        hashes[i] = f"unreadable:{image}"
        n_bad += 1
    if n_bad:
        log.warning("%d labelled image(s) are missing or unreadable: each gets a fold of its own and is skipped "
                    "when the images are read", n_bad)
    return pd.Series(hashes, index=first["image"].to_numpy())


def assign_folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int, key: str = "") -> np.ndarray:
    """Fold index per row; never raises inside sklearn: k is lowered to what the data allows, with a warning."""
    y, groups = np.asarray(y), np.asarray(groups)
    n_groups = len(np.unique(groups))
    values, per_value = np.unique(y, return_counts=True)
    n_splits = min(k, n_groups, int(per_value.max()))
    if n_splits < 2:
        raise FashiontagError(
            f"{key}: cannot make folds from {len(y)} rows ({n_groups} distinct images, largest value "
            f"{int(per_value.max())} rows); cross-validation needs at least 2 of each"
        )
    if n_splits < k:
        log.warning("%s: only %d folds possible (asked for %d): too few distinct images", key, n_splits, k)
    rare = values[per_value < n_splits]
    if len(rare):
        log.warning("%s: values %s have fewer than %d rows and will be missing from some folds",
                    key, rare.tolist(), n_splits)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    fold = np.full(len(y), -1, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the rare-value warning above says it in our terms
        for i, (_, valid_idx) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
            fold[valid_idx] = i
    return fold


def check_n_folds(k: object) -> int:
    """Cross-validation needs at least 2 folds: a bad count is the setting's fault, not the data's."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise FashiontagError(f"the number of folds must be an integer of at least 2, got {k!r} "
                              "(--k or data.n_folds)")
    return int(k)


def make_folds(
    root: str | Path, labels: pd.DataFrame, k: int = 5, seed: int = 0, workers: int | None = None,
    skip_missing: bool = False,
) -> pd.DataFrame:
    """DataFrame[image, key, y, fold] for every labelled row, keys in first-appearance order."""
    check_n_folds(k)
    if labels.empty:
        raise DataError(root, "no labelled rows to make folds from")
    hashes = content_hashes(root, labels, workers, skip_missing)
    parts = []
    for key in dict.fromkeys(labels["key"]):
        part = labels.loc[labels["key"] == key, ["image", "key", "y"]].reset_index(drop=True)
        groups = hashes.loc[part["image"].to_numpy()].to_numpy()
        n_dup = len(groups) - len(np.unique(groups))
        if n_dup:
            log.info("%s: %d rows duplicate another image's content; kept in the same fold", key, n_dup)
        part["fold"] = assign_folds(part["y"].to_numpy(), groups, k, seed, key)
        sizes = part["fold"].value_counts().sort_index().tolist()
        log.info("%s: %d rows in %d folds, sizes %s", key, len(part), len(sizes), sizes)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)[FOLD_COLUMNS]


def check_overwrite(path: str | Path, force: bool = False) -> None:
    """Fold files are never silently replaced: raise unless `force` when `path` exists."""
    if Path(path).exists() and not force:
        raise FashiontagError(
            f"{path} already exists: folds are written once per dataset so runs stay comparable; "
            "pass --force to replace it (runs trained on the old folds will no longer match)"
        )


def write_folds(path: str | Path, folds: pd.DataFrame, force: bool = False) -> Path:
    """Write the fold file; without `force` never over one that exists, even one another process wrote
    while these folds were computed (the check above and the write are two steps: the write is exclusive).

    The file is read back: if a concurrent `folds --force` replaced it meanwhile, that is said instead of
    reporting folds the file does not hold.
    """
    path = Path(path)
    check_overwrite(path, force)
    text = folds[FOLD_COLUMNS].to_csv(index=False, lineterminator="\n")
    try:
        atomic_write_text(path, text, exclusive=not force)
    except OutputExistsError:
        raise FashiontagError(f"{path} was written by another command while these folds were computed; it is "
                              "kept as it is (pass --force to replace it)") from None
    if path.read_text(encoding="utf-8") != text:
        raise FashiontagError(f"{path} was replaced by another command while this one wrote it; it holds that "
                              "command's folds, not these")
    return path


def load_folds(path: str | Path, labels: pd.DataFrame) -> pd.DataFrame:
    """`labels` (rows and order kept) with an int `fold` column from the fold file.

    Only the keys present in `labels` are compared, so training one key needs only that key's rows.
    A labelled row without a fold, or a fold row (of those keys) not in the labels, is a DataError
    naming both counts and the file: folds made for other data must be regenerated, never guessed.
    """
    path = Path(path)
    table = read_fold_file(path, missing_hint="make it with `fashiontag folds --data ROOT`")
    table = table[table["key"].isin(set(labels["key"]))].rename(columns={"y": "fold_y"})
    cols = ["image", "key", "fold"] + (["fold_y"] if "fold_y" in table.columns else [])
    merged = labels.merge(table[cols], on=["image", "key"], how="outer", indicator=True, sort=False)
    no_fold = merged[merged["_merge"] == "left_only"]
    not_labelled = merged[merged["_merge"] == "right_only"]
    if len(no_fold) or len(not_labelled):
        example = (no_fold if len(no_fold) else not_labelled).iloc[0]
        raise DataError(
            path,
            f"does not match the dataset: {len(no_fold)} labelled rows have no fold and {len(not_labelled)} "
            f"fold rows are not labelled (e.g. {example['image']} ({example['key']})); regenerate with "
            "`fashiontag folds --data ROOT --force`",
        )
    out = labels.merge(table[cols], on=["image", "key"], how="left", validate="one_to_one")
    if "fold_y" in out.columns:
        if "y" in out.columns:
            changed = int((out["y"].to_numpy() != out["fold_y"].to_numpy()).sum())
            if changed:
                log.warning("%s: %d rows changed label since the folds were made (stratification is stale)",
                            path, changed)
        out = out.drop(columns="fold_y")
    out["fold"] = out["fold"].astype(np.int64)
    return out
