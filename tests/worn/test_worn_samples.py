"""Split contact sheets: a seeded sample of each group, person boxes drawn on the worn one."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from fashiontag.worn.samples import CAPTION, THUMB, caption, write_samples


def test_contact_sheets_per_group_with_boxes(tmp_path):
    names = [f"img{i}.jpg" for i in range(5)]
    for i, name in enumerate(names):  # flat grey photos: any red in a sheet is a drawn box
        Image.new("RGB", (40, 60), (90 + 10 * i,) * 3).save(tmp_path / name)
    split = pd.DataFrame({
        "image": names, "worn": [True, True, False, False, False],
        "x0": [0.1, 0.2, None, None, None], "y0": [0.1, 0.1, None, None, None],
        "x1": [0.9, 0.8, None, None, None], "y1": [0.9, 0.9, None, None, None],
        "conf": [0.9, 0.5, None, None, None],
    })
    out = write_samples(tmp_path, split, tmp_path / "split" / "ds.csv", n=2)
    worn, hanger = Image.open(out["worn"]), Image.open(out["hanger"])
    assert out["worn"].name == "ds.worn.jpg" and out["hanger"].name == "ds.hanger.jpg"
    assert worn.size == (8 * THUMB, THUMB + CAPTION) and hanger.size == (8 * THUMB, THUMB + CAPTION)
    red = lambda im: ((np.asarray(im)[..., 0] > 200) & (np.asarray(im)[..., 1] < 60)  # noqa: E731
                      & (np.asarray(im)[..., 2] < 60)).sum()
    assert red(worn) > 100, "the person boxes are drawn"
    assert red(hanger) == 0
    again = write_samples(tmp_path, split, tmp_path / "split" / "ds.csv", n=2)
    assert np.array_equal(np.asarray(Image.open(again["hanger"])), np.asarray(hanger)), "seeded sample"


def test_an_empty_group_writes_no_sheet(tmp_path, write_image):
    write_image(tmp_path / "a.jpg")
    split = pd.DataFrame({"image": ["a.jpg"], "worn": [False], "x0": [None], "y0": [None], "x1": [None],
                          "y1": [None], "conf": [None]})
    out = write_samples(tmp_path, split, tmp_path / "ds.csv")
    assert out["worn"] is None and out["hanger"].is_file()


def test_caption_gives_the_reason_and_evidence():
    row = pd.Series({"worn": True, "reason": "face", "score": 1.28, "conf": 0.84, "box_aspect": 0.72,
                     "face": 0.28, "head_skin": 0.19})
    assert caption(row) == ["face 1.28", "c.84 a.72 f.28 s.19"]
    old = pd.Series({"worn": False, "conf": 0.0, "x0": None})  # a split file from before the evidence columns
    assert caption(old) == ["hanger", "c.00 a- f- s-"]


def test_overruled_box_is_drawn_blue_on_the_hanger_sheet(tmp_path):
    Image.new("RGB", (40, 60), (128, 128, 128)).save(tmp_path / "a.jpg")
    split = pd.DataFrame({"image": ["a.jpg"], "worn": [False], "persons": [1], "x0": [0.1], "y0": [0.1],
                          "x1": [0.9], "y1": [0.9], "conf": [0.7], "reason": ["no body evidence"], "score": [0.6]})
    sheet = np.asarray(Image.open(write_samples(tmp_path, split, tmp_path / "ds.csv")["hanger"]))
    blue = (sheet[..., 2] > 200) & (sheet[..., 0] < 60)
    assert blue.sum() > 100

