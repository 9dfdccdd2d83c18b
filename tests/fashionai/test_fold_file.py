"""One fold-table reader for the dataset's fold file and each run key's folds.csv."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fashiontag.core.errors import DataError
from fashiontag.fashionai.fold_file import read_fold_file
from fashiontag.fashionai.runs import key_folds


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_bad_fold_tables_name_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fold file not found; run the folds step"):
        read_fold_file(tmp_path / "none.csv", missing_hint="run the folds step")
    with pytest.raises(DataError, match=r"x\.csv: missing columns \['key'\]"):
        read_fold_file(write(tmp_path / "x.csv", "image,fold\na.jpg,0\n"))
    with pytest.raises(DataError, match=r"x\.csv:3: fold '-1' is not a non-negative integer"):
        read_fold_file(write(tmp_path / "x.csv", "image,key,fold\na.jpg,k,0\nb.jpg,k,-1\n"))
    with pytest.raises(DataError, match=r"x\.csv:3: duplicate row for a.jpg k"):
        read_fold_file(write(tmp_path / "x.csv", "image,key,fold\na.jpg,k,0\na.jpg,k,1\n"))
    ok = read_fold_file(write(tmp_path / "x.csv", "image,key,y,fold\n001.jpg,k,2,1\n"))
    assert ok["fold"].dtype == "int64" and ok["image"].tolist() == ["001.jpg"]  # image names stay strings


def test_key_folds_reads_the_runs_copy_or_falls_back_to_the_oof(tmp_path: Path) -> None:
    key_dir = tmp_path / "run" / "skirt_length_labels"
    write(key_dir / "folds.csv", "image,key,fold,y\na.jpg,skirt_length_labels,0,1\nb.jpg,skirt_length_labels,1,0\n"
                                 "a.jpg,other_labels,1,0\n")
    assert key_folds(key_dir).to_dict("list") == {"image": ["a.jpg", "b.jpg"], "fold": [0, 1]}
    write(key_dir / "folds.csv", "image,key,fold\na.jpg,skirt_length_labels,x\n")
    with pytest.raises(DataError, match="folds.csv:2: fold 'x'"):
        key_folds(key_dir)

    (key_dir / "folds.csv").unlink()
    pd.DataFrame({"image": ["c.jpg"], "key": ["skirt_length_labels"], "fold": [2], "label": ["yn"],
                  "p_0": [1.0], "p_1": [0.0]}).to_csv(key_dir / "oof.csv", index=False)
    assert key_folds(key_dir).to_dict("list") == {"image": ["c.jpg"], "fold": [2]}
