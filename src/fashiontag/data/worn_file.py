"""The split file's contract: runs/worn/<dataset>.csv, one row per image of a dataset.

Columns: image (as in label.csv/question.csv, or relative to a plain image folder), worn, persons,
x0 y0 x1 y1 (the most confident person box, normalised xyxy; empty when none), conf (its score),
detector (weights name), weights_md5, imgsz, threshold. `fashiontag worn` (worn.runner) writes it;
the training modes and the report read it through this module.

Since 2026-11-30 a row also says why it was called worn or not (CALL_COLUMNS): reason (face | figure |
box for worn; no person | no body evidence for not worn), score (the strength of the strongest path to
worn: >= 1 worn), the evidence of a body in the person box the call rests on (box_aspect, face, face_skin,
face_contrast, head_skin, colour; see worn/evidence.py), and rule (the decision settings the row was made
with). The box columns then hold that box: the most confident one, unless a less confident box
showed a body. Older files without these columns stay readable: their calls were the detector's alone,
so they read as reason box / no person, score 1 / 0, rule box, evidence empty.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fashiontag.core.errors import DataError
from fashiontag.core.files import read_csv_checked
from fashiontag.core.skips import SkipReport
from fashiontag.data.folds import dataset_name
from fashiontag.data.images import is_image_file
from fashiontag.fashionai.format import LABEL_CSV, QUESTION_CSV, read_labels, read_questions

SPLIT_COLUMNS = ["image", "worn", "persons", "x0", "y0", "x1", "y1", "conf", "detector", "weights_md5",
                 "imgsz", "threshold"]
BOX_COLUMNS = ["x0", "y0", "x1", "y1"]
EVIDENCE_COLUMNS = ["box_aspect", "face", "face_skin", "face_contrast", "head_skin", "colour"]
CALL_COLUMNS = ["reason", "score", *EVIDENCE_COLUMNS, "rule"]
WRITTEN_COLUMNS = SPLIT_COLUMNS + CALL_COLUMNS  # what `fashiontag worn` writes; SPLIT_COLUMNS must be there
OLD_RULE = "box"  # files written before the evidence columns: any person box was a worn call


def dataset_tag(root: str | Path) -> str:
    """The same dataset name as folds/<dataset>.csv: generic folder names get their parent's in front."""
    return dataset_name(root)


def split_path(root: str | Path, cfg: dict) -> Path:
    """Where the split file of `root` lives (the training runner and predictor look here too)."""
    return Path(cfg["worn"]["out_dir"]) / f"{dataset_tag(root)}.csv"


def list_images(root: str | Path, skips: SkipReport | None = None) -> list[str]:
    """Every image of a dataset: label.csv and question.csv rows (deduplicated, file order), or, for a
    folder that is not a FashionAI root, every image file below it (sorted relative paths)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "dataset folder not found")
    images: list[str] = []
    if (root / LABEL_CSV).exists():
        images += read_labels(root, skips=skips)["image"].tolist()
    if (root / QUESTION_CSV).exists():
        images += read_questions(root, skips=skips)["image"].tolist()
    if not images and not (root / LABEL_CSV).exists() and not (root / QUESTION_CSV).exists():
        images = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if is_image_file(p))
    if not images:
        raise DataError(root, f"no images: neither {LABEL_CSV} / {QUESTION_CSV} rows nor image files")
    return list(dict.fromkeys(images))


def read_split(path: str | Path) -> pd.DataFrame:
    """Load and check a split file; a damaged one is a DataError naming it."""
    path = Path(path)
    df = read_csv_checked(path, {"image": str, "detector": str, "weights_md5": str},
                          not_found="split file not found; make it with `fashiontag worn --data ROOT`",
                          what="split file")
    missing = [c for c in SPLIT_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(path, f"not a split file: missing columns {missing}")
    if df["worn"].dtype != bool:
        bad = ~df["worn"].astype(str).isin(["True", "False"])
        if bad.any():
            raise DataError(path, f"worn must be True/False, got {df['worn'][bad].iloc[0]!r}", int(bad.idxmax()) + 2)
        df["worn"] = df["worn"].astype(str) == "True"
    dup = df["image"].duplicated()
    if dup.any():
        raise DataError(path, f"duplicate image {df['image'][dup].iloc[0]}", int(dup.idxmax()) + 2)
    if "reason" not in df.columns:
        df = _as_old_calls(df)
    return df


def _as_old_calls(df: pd.DataFrame) -> pd.DataFrame:
    """A split file from before the evidence columns: the detector's box alone made each call."""
    df = df.copy()
    df["reason"] = df["worn"].map({True: OLD_RULE, False: "no person"})
    df["score"] = df["worn"].astype(float)
    for col in EVIDENCE_COLUMNS:
        df[col] = float("nan")
    df["rule"] = OLD_RULE
    return df
