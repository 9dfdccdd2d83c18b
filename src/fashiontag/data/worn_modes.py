"""Training modes that use the hanger-vs-worn split (`worn.mode`), as a thin layer of table functions.

- none:     the split is not used.
- combined: one model per key; `worn` is metadata only, so the report can score each group separately.
- separate: one model per key *and group* (worn, hanger) on the same folds; their out-of-fold and test
            predictions are merged back into one table in the original (question) order.
- crop:     one model per key, trained and predicting on the person box grown by `worn.crop_margin`
            for worn images; hanger/flat images stay uncropped.

The training runner and the predictor call these functions; nothing here trains or predicts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from fashiontag.core.errors import ConfigError, DataError
from fashiontag.data.worn_file import BOX_COLUMNS, list_images, read_split, split_path

log = logging.getLogger(__name__)

MODES = ("none", "combined", "separate", "crop")
GROUPS = ("worn", "hanger")
Crop = tuple[float, float, float, float]


def check_mode(mode: str | None) -> str:
    mode = "none" if mode in (None, False) else str(mode)
    if mode not in MODES:
        raise ConfigError(f"worn.mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def split_mode(cfg: dict) -> str:
    return check_mode(cfg["worn"]["mode"])


def _on_missing(cfg: dict) -> str:
    """Images the split skipped as unreadable count as hanger only when the user asked to skip bad input."""
    return "hanger" if cfg["data"]["skip_bad"] else "error"


def restrict_to_group(cfg: dict, root: str | Path, table: pd.DataFrame, allow_empty: bool = False
                      ) -> pd.DataFrame:
    """Hook (train runner, predictor): inside a separate-mode group sub-run (`worn.group` set by
    recipes/separate.py), only that group's rows of `table`; every other run gets `table` unchanged.
    A key left without rows is an error for training (allow_empty=False), fine for test questions."""
    group = cfg["worn"]["group"]
    if not group:
        return table
    if group not in GROUPS:
        raise ConfigError(f"worn.group must be one of {', '.join(GROUPS)}, got {group!r}")
    split, path = load_split(cfg, root)
    rows = attach_worn(table, split, path, _on_missing(cfg))
    keep = (rows["group"] == group).to_numpy()
    if "key" in table.columns and not allow_empty:
        empty = sorted(set(table["key"]) - set(table["key"][keep]))
        if empty:
            raise DataError(path, f"separate mode: no {group} images of {', '.join(empty)} in {root}; "
                            "use worn.mode=combined or crop for such data")
    return table[keep].reset_index(drop=True)


def crops_for(cfg: dict, root: str | Path, table: pd.DataFrame) -> list[Crop | None] | None:
    """Hook (train runner, predictor): crop mode's person boxes for `table`'s rows, None otherwise."""
    if split_mode(cfg) != "crop":
        return None
    split, path = load_split(cfg, root)
    return crop_boxes(table, split, float(cfg["worn"]["crop_margin"]), path, _on_missing(cfg))


def split_for(cfg: dict, root: str | Path) -> tuple[pd.DataFrame, Path] | None:
    """The split table of `root` when `worn.mode` uses it, else None."""
    return None if split_mode(cfg) == "none" else load_split(cfg, root)


def load_split(cfg: dict, root: str | Path) -> tuple[pd.DataFrame, Path]:
    """The split table of `root` and its file. Modes only read the file: detection is the job of
    `fashiontag worn`, so a missing or incomplete file is an error that names that command (training
    or predicting never loads, runs or trains a detector as a side effect)."""
    path = split_path(root, cfg)
    if not path.exists():
        raise DataError(path, f"split file missing for {root}; make it first with "
                              f"`fashiontag worn --data {root}` (worn.mode={split_mode(cfg)} reads it)")
    if not _complete(path, root):
        raise DataError(path, f"split file does not cover every image of {root}; update it with "
                              f"`fashiontag worn --data {root}`")
    df = read_split(path)
    wanted = str(cfg["worn"]["weights"])
    for made_by in sorted(set(df["detector"].astype(str))):
        same = made_by.startswith("tiny:") if wanted == "tiny" else made_by == Path(wanted).name
        if not same:
            log.warning("%s was made with %s, not worn.weights=%s; `fashiontag worn --force` redoes it",
                        path, made_by, wanted)
    return df, path


def _complete(path: Path, root: str | Path) -> bool:
    """A split file exists and covers the dataset (then no detector needs loading at all)."""
    if not path.exists():
        return False
    return set(list_images(root)) <= set(read_split(path)["image"])


def attach_worn(table: pd.DataFrame, split: pd.DataFrame, split_file: str | Path = "<split file>",
                on_missing: str = "error") -> pd.DataFrame:
    """`table` (any rows with an `image` column) plus `worn` (bool) and `group` ("worn"/"hanger").

    on_missing: "error" raises DataError naming the split file and the first image without a row;
    "hanger" treats such images (e.g. skipped as unreadable by the split) as hanger/flat, with a warning.
    """
    if on_missing not in ("error", "hanger"):
        raise ValueError(f"on_missing must be 'error' or 'hanger', got {on_missing!r}")
    worn = table["image"].map(split.set_index("image")["worn"])
    missing = worn.isna()
    if missing.any():
        if on_missing == "error":
            raise DataError(split_file, f"{int(missing.sum())} image(s) have no split row, e.g. "
                            f"{table['image'][missing].iloc[0]}; rerun `fashiontag worn --data ROOT`")
        log.warning("%d image(s) have no row in %s; treated as hanger/flat", int(missing.sum()), split_file)
    out = table.copy()
    out["worn"] = worn.where(~missing, False).astype(bool)
    out["group"] = np.where(out["worn"], "worn", "hanger")
    return out


def merge_groups(order: pd.DataFrame, parts: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """separate mode: the groups' prediction tables concatenated and put back in `order`'s row order.

    `order` has `image` and `key` (e.g. question.csv rows); every (image, key) must be predicted by
    exactly one group, otherwise a DataError names the first row at fault.
    """
    frames = [df.assign(group=name) for name, df in parts.items() if len(df)]
    merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["image", "key", "group"])
    ids = ["image", "key"]
    dup = merged.duplicated(ids, keep=False)
    if dup.any():
        row = merged[dup].iloc[0]
        raise DataError("<separate-mode merge>", f"{row['image']} ({row['key']}) predicted by more than one group")
    # Probability columns of groups are aligned by name; a key has the same values in both groups.
    out = order[ids].merge(merged, on=ids, how="left", indicator=True, validate="one_to_one")
    lost = out["_merge"] != "both"
    if lost.any():
        row = out[lost].iloc[0]
        raise DataError("<separate-mode merge>", f"no group predicted {row['image']} ({row['key']})")
    extra = len(merged) - int((~lost).sum())
    if extra:
        raise DataError("<separate-mode merge>", f"{extra} predicted row(s) are not in the requested order table")
    return out.drop(columns="_merge")


def expand_box(box: Crop, margin: float) -> Crop:
    """Grow a normalised xyxy box by `margin` x its width/height on each side, clipped to the image."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    return (max(0.0, x0 - dx), max(0.0, y0 - dy), min(1.0, x1 + dx), min(1.0, y1 + dy))


def crop_boxes(table: pd.DataFrame, split: pd.DataFrame, margin: float, split_file: str | Path = "<split file>",
               on_missing: str = "error") -> list[Crop | None]:
    """crop mode: one box per row of `table` (person box + margin when worn, None when hanger/flat)."""
    if margin < 0:
        raise ConfigError(f"worn.crop_margin must be >= 0, got {margin}")
    worn = attach_worn(table, split, split_file, on_missing)["worn"].to_numpy()
    boxes = table["image"].map(split.set_index("image")[BOX_COLUMNS].apply(tuple, axis=1))
    out: list[Crop | None] = []
    for is_worn, box in zip(worn, boxes, strict=True):
        ok = is_worn and isinstance(box, tuple) and not any(pd.isna(v) for v in box)
        out.append(expand_box(tuple(float(v) for v in box), margin) if ok else None)
    return out


def group_report(oof: pd.DataFrame, split: pd.DataFrame, score, split_file: str | Path = "<split file>",
                 on_missing: str = "hanger") -> dict[str, dict]:
    """combined (or any) mode: `score(rows) -> dict` applied to all rows and to each group's rows.

    Reported by group so runs in different modes can be compared on the same folds and the same images.
    """
    rows = attach_worn(oof, split, split_file, on_missing)
    out = {"all": {"n": len(rows), **score(rows)}}
    for g in GROUPS:
        part = rows[rows["group"] == g]
        out[g] = {"n": len(part), **(score(part) if len(part) else {})}
    return out


def require_plain_mode(cfg: dict, command: str) -> None:
    """Hook for commands that read fold models directly (stack, tag): they do not crop or merge groups
    yet, so a crop/separate run would give silently different inputs; refuse it clearly instead."""
    mode = split_mode(cfg)
    if mode in ("crop", "separate"):
        raise ConfigError(f"`fashiontag {command}` does not support worn.mode={mode} runs yet; "
                          "use a run trained with worn.mode=none or combined")
