"""worn.mode table functions: groups, merge back in question order, crop boxes, per-group scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fashiontag.core.errors import ConfigError, DataError
from fashiontag.data.worn_file import SPLIT_COLUMNS
from fashiontag.data.worn_modes import (
    attach_worn,
    check_mode,
    crop_boxes,
    expand_box,
    group_report,
    merge_groups,
    restrict_to_group,
)

NAN = float("nan")


def split_table(rows: list[tuple[str, bool, tuple]]) -> pd.DataFrame:
    recs = []
    for image, worn, box in rows:
        x0, y0, x1, y1 = box if box else (NAN,) * 4
        recs.append({"image": image, "worn": worn, "persons": int(worn), "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                     "conf": 0.9 if worn else 0.0, "detector": "d.pt", "weights_md5": "m", "imgsz": 64,
                     "threshold": 0.4})
    return pd.DataFrame(recs, columns=SPLIT_COLUMNS)


SPLIT = split_table([("a.jpg", True, (0.2, 0.1, 0.6, 0.9)), ("b.jpg", False, None),
                     ("c.jpg", True, (0.0, 0.0, 1.0, 1.0)), ("d.jpg", False, None)])
QUESTIONS = pd.DataFrame({"image": ["d.jpg", "a.jpg", "b.jpg", "c.jpg"], "key": ["k"] * 4})


def test_check_mode():
    assert [check_mode(m) for m in (None, "none", "crop")] == ["none", "none", "crop"]
    with pytest.raises(ConfigError, match="worn.mode"):
        check_mode("person")


def test_groups_and_merge_back_in_question_order():
    groups = attach_worn(QUESTIONS, SPLIT)["group"].to_numpy()
    idx = {g: np.flatnonzero(groups == g) for g in ("worn", "hanger")}
    assert idx["worn"].tolist() == [1, 3] and idx["hanger"].tolist() == [0, 2]
    # Each group's model predicts its rows; the merge restores the question order exactly.
    worn = QUESTIONS.iloc[idx["worn"]].assign(p_0=[0.9, 0.8], p_1=[0.1, 0.2])
    hanger = QUESTIONS.iloc[idx["hanger"]].assign(p_0=[0.3, 0.4], p_1=[0.7, 0.6])
    merged = merge_groups(QUESTIONS, {"hanger": hanger[::-1], "worn": worn})
    assert merged["image"].tolist() == QUESTIONS["image"].tolist()
    assert merged["p_0"].tolist() == [0.3, 0.9, 0.4, 0.8]
    assert merged["group"].tolist() == ["hanger", "worn", "hanger", "worn"]


def test_merge_refuses_gaps_and_overlaps():
    worn = QUESTIONS.iloc[[1, 3]].assign(p_0=1.0)
    with pytest.raises(DataError, match="no group predicted d.jpg"):
        merge_groups(QUESTIONS, {"worn": worn})
    with pytest.raises(DataError, match="more than one group"):
        merge_groups(QUESTIONS, {"worn": worn, "hanger": QUESTIONS.assign(p_0=1.0)})


def test_missing_split_row_is_named_or_hanger():
    table = pd.DataFrame({"image": ["a.jpg", "zzz.jpg"], "key": ["k", "k"]})
    with pytest.raises(DataError, match="zzz.jpg") as err:
        attach_worn(table, SPLIT, "runs/worn/x.csv")
    assert "runs/worn/x.csv" in str(err.value)
    assert attach_worn(table, SPLIT, on_missing="hanger")["group"].tolist() == ["worn", "hanger"]


def test_expand_box_clips_to_image():
    assert expand_box((0.2, 0.1, 0.6, 0.9), 0.1) == pytest.approx((0.16, 0.02, 0.64, 0.98))
    assert expand_box((0.0, 0.05, 1.0, 1.0), 0.25) == (0.0, 0.0, 1.0, 1.0)


def test_crop_boxes_worn_only():
    boxes = crop_boxes(QUESTIONS, SPLIT, margin=0.0)
    assert boxes[0] is None and boxes[2] is None  # hanger images stay uncropped
    assert boxes[1] == pytest.approx((0.2, 0.1, 0.6, 0.9)) and boxes[3] == (0.0, 0.0, 1.0, 1.0)
    with pytest.raises(ConfigError, match="crop_margin"):
        crop_boxes(QUESTIONS, SPLIT, margin=-0.1)


def test_group_report_scores_each_group():
    oof = QUESTIONS.assign(hit=[1, 1, 0, 1])
    report = group_report(oof, SPLIT, lambda rows: {"accuracy": float(np.mean(rows["hit"]))})
    assert report["all"] == {"n": 4, "accuracy": 0.75}
    assert report["worn"] == {"n": 2, "accuracy": 1.0} and report["hanger"] == {"n": 2, "accuracy": 0.5}


def test_restrict_to_group_uses_the_split_file(tmp_path):
    from fashiontag.core.config import load_config
    from fashiontag.core.files import atomic_write_csv
    from fashiontag.data.worn_file import split_path

    root = tmp_path / "shop"
    (root / "Images" / "k").mkdir(parents=True)
    for name in SPLIT["image"]:
        (root / name).write_bytes(b"x")  # list_images (folder mode) only needs the files to exist
    cfg = load_config(None, [f"worn.out_dir={tmp_path / 'split'}", "worn.mode=separate"])
    atomic_write_csv(split_path(root, cfg), SPLIT)  # complete split file: no detector is loaded
    assert restrict_to_group(cfg, root, QUESTIONS) is QUESTIONS  # not inside a group sub-run
    cfg["worn"]["group"] = "worn"
    assert restrict_to_group(cfg, root, QUESTIONS)["image"].tolist() == ["a.jpg", "c.jpg"]
    only_hanger = QUESTIONS[QUESTIONS["image"].isin(["b.jpg", "d.jpg"])]
    with pytest.raises(DataError, match="no worn images of k"):
        restrict_to_group(cfg, root, only_hanger)
    assert restrict_to_group(cfg, root, only_hanger, allow_empty=True).empty
