"""`fashiontag worn --review N`: the least certain calls in each direction, as sheets and a table."""

from __future__ import annotations

import pandas as pd
from PIL import Image

from fashiontag.worn.review import least_certain, write_review
from fashiontag.worn.samples import CAPTION, THUMB


def split_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "image": [f"img{i}.jpg" for i in range(7)],
        "worn": [True, True, True, False, False, False, False],
        "persons": [1, 2, 1, 1, 1, 0, 1],
        "score": [1.4, 1.02, 1.1, 0.95, 0.5, 0.0, 0.7],
        "reason": ["face", "figure", "figure", "no body evidence", "no body evidence", "no person",
                   "no body evidence"],
        "x0": [0.1] * 7, "y0": [0.1] * 7, "x1": [0.9] * 7, "y1": [0.9] * 7, "conf": [0.8] * 7,
    })


def test_least_certain_calls_are_closest_to_flipping():
    groups = least_certain(split_rows(), 2)
    assert groups["worn"]["image"].tolist() == ["img1.jpg", "img2.jpg"]  # the weakest worn calls
    assert groups["hanger"]["image"].tolist() == ["img3.jpg", "img6.jpg"]  # the strongest not-worn calls
    everything = least_certain(split_rows(), 10)
    assert "img5.jpg" not in everything["hanger"]["image"].tolist()  # no person box: nothing to flip


def test_review_writes_sheets_and_a_table(tmp_path):
    for i in range(7):
        Image.new("RGB", (40, 60), (90 + 10 * i,) * 3).save(tmp_path / f"img{i}.jpg")
    out = write_review(tmp_path, split_rows(), tmp_path / "ds.csv", 3)
    assert out["worn"].name == "ds.review-worn.jpg" and out["hanger"].name == "ds.review-hanger.jpg"
    assert Image.open(out["worn"]).size == (8 * THUMB, THUMB + CAPTION)
    table = pd.read_csv(out["table"])
    assert table["call"].tolist() == ["worn"] * 3 + ["hanger"] * 3
    assert table["image"].tolist()[:3] == ["img1.jpg", "img2.jpg", "img0.jpg"]


def test_review_of_a_split_without_worn_calls(tmp_path):
    Image.new("RGB", (40, 60)).save(tmp_path / "img3.jpg")
    rows = split_rows().iloc[[3]]
    out = write_review(tmp_path, rows, tmp_path / "ds.csv", 5)
    assert out["worn"] is None and out["hanger"].is_file()
