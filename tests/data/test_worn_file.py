"""The split file's columns: the call's reason and evidence are written; older files stay readable."""

from __future__ import annotations

import math

import pandas as pd

from fashiontag.core.files import atomic_write_csv
from fashiontag.data.worn_file import (
    CALL_COLUMNS,
    EVIDENCE_COLUMNS,
    SPLIT_COLUMNS,
    WRITTEN_COLUMNS,
    read_split,
)


def old_rows() -> pd.DataFrame:
    return pd.DataFrame([
        ["a.jpg", True, 1, 0.1, 0.1, 0.9, 0.9, 0.7, "yolo.pt", "abc", 640, 0.4],
        ["b.jpg", False, 0, None, None, None, None, 0.0, "yolo.pt", "abc", 640, 0.4],
    ], columns=SPLIT_COLUMNS)


def test_old_split_file_reads_as_the_detectors_calls(tmp_path):
    path = atomic_write_csv(tmp_path / "old.csv", old_rows())
    df = read_split(path)
    assert list(df.columns) == WRITTEN_COLUMNS
    assert df["reason"].tolist() == ["box", "no person"] and df["score"].tolist() == [1.0, 0.0]
    assert set(df["rule"]) == {"box"} and all(math.isnan(v) for v in df[EVIDENCE_COLUMNS[0]])


def test_new_columns_round_trip(tmp_path):
    df = old_rows()
    extra = {"reason": ["face", "no person"], "score": [1.3, 0.0], "box_aspect": [0.7, None],
             "face": [0.3, 0.0], "face_skin": [0.6, None], "face_contrast": [52.0, None],
             "head_skin": [0.2, None], "colour": [True, True], "rule": ["evidence v1 figure 0.85/0.5"] * 2}
    df = df.assign(**extra)[WRITTEN_COLUMNS]
    back = read_split(atomic_write_csv(tmp_path / "new.csv", df))
    assert back[CALL_COLUMNS].iloc[0].tolist()[:4] == ["face", 1.3, 0.7, 0.3]
    assert back["rule"].iloc[1] == "evidence v1 figure 0.85/0.5"
