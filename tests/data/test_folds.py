"""Fold invariants: stratified (every value in every fold), duplicates grouped, seeded, written once."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashiontag.cli import main
from fashiontag.core.config import load_config
from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.data.folds import assign_folds, dataset_name, folds_path, load_folds, make_folds, write_folds
from fashiontag.fashionai.format import load_dataset, read_labels, write_labels

KEYS = {"skirt_length_labels": ["a"] * 6, "garment_type_labels": ["coat", "dress", "shirt"]}


def test_folds_path_rule(tmp_path):
    assert dataset_name(tmp_path / "demo" / "train") == "demo_train"
    assert dataset_name(tmp_path / "demo" / "Validation") == "demo_Validation"
    assert dataset_name(tmp_path / "cs") == "cs"
    assert folds_path(tmp_path / "cs", "folds") == Path("folds") / "cs.csv"
    with pytest.raises(TypeError, match="data.folds_dir"):
        folds_path(tmp_path / "cs")  # no default of its own: the config's data.folds_dir decides
    assert str(folds_path(tmp_path / "cs", "out")) == "out/cs.csv"
    cfg = load_config(overrides=[f"data.root={tmp_path / 'demo' / 'train'}", "data.folds_dir=ff"])
    assert str(folds_path(cfg)) == "ff/demo_train.csv"


def test_every_value_in_every_fold_and_seeded(make_fashionai_root, tmp_path):
    keys = {"skirt_length_labels": [str(i) for i in range(6)], "garment_type_labels": ["coat", "dress", "shirt"]}
    root = make_fashionai_root(tmp_path / "d", keys=keys, per_value=10)
    labels = load_dataset(root).labels
    folds = make_folds(root, labels, k=5, seed=0)
    assert list(folds.columns) == ["image", "key", "y", "fold"] and len(folds) == len(labels)
    for key, part in folds.groupby("key"):
        table = pd.crosstab(part["y"], part["fold"])
        assert table.shape == (len(keys[key]), 5), key
        assert (table.to_numpy() == 2).all(), table  # 10 per value over 5 folds: exactly balanced
    again = make_folds(root, labels, k=5, seed=0)
    pd.testing.assert_frame_equal(folds, again)
    other = make_folds(root, labels, k=5, seed=1)
    assert not np.array_equal(other["fold"], folds["fold"])


def test_duplicate_images_share_a_fold(make_fashionai_root, tmp_path):
    root = make_fashionai_root(tmp_path / "d", keys={"garment_type_labels": ["a", "b"]}, per_value=6)
    labels = read_labels(root)
    # Byte-identical copies under new names, labelled like their originals.
    extra = []
    for i, row in enumerate(labels.itertuples()):
        if i % 3 == 0:
            copy = row.image.replace(".jpg", "_dup.jpg")
            shutil.copyfile(root / row.image, root / copy)
            extra.append((copy, row.key, row.label))
    write_labels(root, pd.concat([labels[["image", "key", "label"]], pd.DataFrame(extra, columns=["image", "key", "label"])]))
    folds = make_folds(root, read_labels(root), k=3, seed=0).set_index("image")
    for copy, _, _ in extra:
        assert folds.loc[copy, "fold"] == folds.loc[copy.replace("_dup", ""), "fold"]


def test_small_values_warn_but_never_crash(caplog):
    y = np.array([0] * 12 + [1] * 2)
    with caplog.at_level(logging.WARNING):
        fold = assign_folds(y, np.arange(len(y)), k=5, seed=0, key="k")
    assert set(fold) == set(range(5)) and (fold >= 0).all()
    assert "values [1] have fewer than 5 rows" in caplog.text
    # Fewer distinct images than k: as many folds as possible, with a warning.
    fold = assign_folds(np.array([0, 0, 0, 1]), np.array([0, 1, 2, 2]), k=5, seed=0, key="k")
    assert set(fold) == {0, 1, 2}
    assert "only 3 folds possible" in caplog.text
    with pytest.raises(FashiontagError, match="needs at least 2"):
        assign_folds(np.array([0, 1]), np.array([7, 7]), k=5, seed=0, key="k")


def test_written_once_and_loaded_against_the_dataset(fashionai_root, tmp_path):
    labels = load_dataset(fashionai_root).labels
    path = folds_path(fashionai_root, tmp_path / "folds")
    write_folds(path, make_folds(fashionai_root, labels, k=3, seed=0))
    with pytest.raises(FashiontagError, match="already exists.*--force"):
        write_folds(path, make_folds(fashionai_root, labels, k=3, seed=1))
    loaded = load_folds(path, labels)
    assert loaded["image"].tolist() == labels["image"].tolist() and loaded["fold"].dtype == np.int64
    # One key's rows are enough (training one key).
    one = labels[labels["key"] == "garment_type_labels"]
    assert len(load_folds(path, one)) == len(one)
    with pytest.raises(DataError, match=r"folds/demo_train.csv: does not match the dataset: 2 labelled rows have no "
                                        r"fold and 0 fold rows"):
        load_folds(path, pd.concat([labels, labels.head(2).assign(image=lambda d: d["image"] + ".new")]))
    with pytest.raises(DataError, match=r"0 labelled rows have no fold and 3 fold rows are not labelled"):
        load_folds(path, labels.iloc[3:])
    table = pd.read_csv(path)
    table["fold"] = table["fold"].astype(str)
    table.loc[4, "fold"] = "x"
    table.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"demo_train.csv:6: fold 'x' is not a non-negative integer"):
        load_folds(path, labels)


def test_cli_folds_refuses_overwrite(fashionai_root, tmp_path, capsys):
    out = tmp_path / "folds"
    args = ["folds", "--data", str(fashionai_root), "--k", "3", "--out-dir", str(out)]
    assert main(args) == 0
    written = (out / "demo_train.csv").read_text()
    assert main(args + ["--seed", "5"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "demo_train.csv").read_text() == written
    assert main(args + ["--seed", "5", "--force"]) == 0


@pytest.mark.slow
@pytest.mark.shared
def test_clothing_small_import_then_folds(tmp_path):
    """Acceptance: import clothing-small/train, make folds, every value in every fold (~15 s CPU)."""
    src = "/work/shared/data/clothing-small/train"
    if not os.path.isdir(src):
        pytest.skip(f"{src} is not available")
    root = tmp_path / "cs"
    assert main(["import-folders", src, str(root), "--attr", "garment_type_labels"]) == 0
    assert main(["folds", "--data", str(root), "--out-dir", str(tmp_path / "folds")]) == 0
    folds = pd.read_csv(tmp_path / "folds" / "cs.csv")
    assert len(folds) == 3068
    assert (pd.crosstab(folds["y"], folds["fold"]).to_numpy() > 0).all()
