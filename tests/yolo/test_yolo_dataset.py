"""The one YOLO dataset writer: caller-assigned splits and negatives (the tiny detector's generated figures)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from fashiontag.data.boxes import Box, Sample
from fashiontag.synth.person_figures import PERSON, person_samples, write_person_samples
from fashiontag.yolo.dataset import write_yolo_dataset
from fashiontag.yolo.tiny_detector import write_dataset


def labels_of(out: Path, split: str) -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted((out / "labels" / split).glob("*.txt"))}


def test_generated_figures_keep_their_split_and_their_negatives(tmp_path: Path) -> None:
    data_yaml = write_dataset(tmp_path, n_train=4, n_val=2, seed=3, render=64)
    out = data_yaml.parent
    assert yaml.safe_load(data_yaml.read_text())["names"] == {0: PERSON}
    train, val = labels_of(out, "train"), labels_of(out, "val")
    assert len(train) == 4 and len(val) == 2
    # Every other image is worn: one box; the others are negatives with an empty label file.
    expected = list(person_samples(4, 3, 64))
    for (stem, text), (_img, worn, box) in zip(train.items(), expected, strict=True):
        assert stem == f"person_3_{list(train).index(stem):05d}"
        if not worn:
            assert text == ""
            continue
        cls, cx, cy, w, h = text.split()
        assert cls == "0"
        assert float(cx) == pytest.approx((box[0] + box[2]) / 2, abs=1e-5)
        assert float(w) == pytest.approx(box[2] - box[0], abs=1e-5)
        assert float(cy) == pytest.approx((box[1] + box[3]) / 2, abs=1e-5)
        assert float(h) == pytest.approx(box[3] - box[1], abs=1e-5)
    assert {p.stem for p in (out / "images" / "val").iterdir()} == set(val)


def test_negatives_only_when_asked_and_bad_boxes_still_drop_an_image(tmp_path: Path) -> None:
    samples = write_person_samples(tmp_path / "gen", 4, seed=0, size=48)
    samples[2] = Sample(samples[2].image, 48, 48, [Box(PERSON, 40, 40, 400, 400)], source="x")  # outside
    splits = ["train", "train", "val", "val"]
    kept = write_yolo_dataset(samples, tmp_path / "a", [PERSON], splits=splits, keep_negatives=True)
    assert kept["images"] == {"train": 2, "val": 1} and kept["dropped_images"] == 1 and kept["bad_boxes"] == 1
    report = pd.read_csv(tmp_path / "a" / "bad_boxes.csv")
    assert report["reason"].str.contains("outside").any()
    plain = write_yolo_dataset(samples, tmp_path / "b", [PERSON], splits=splits)
    assert plain["images"] == {"train": 1, "val": 0}  # without keep_negatives a boxless image is dropped


def test_splits_must_name_train_or_val_per_sample(tmp_path: Path) -> None:
    samples = write_person_samples(tmp_path / "gen", 2, seed=0, size=32)
    with pytest.raises(ValueError, match="splits"):
        write_yolo_dataset(samples, tmp_path / "out", [PERSON], splits=["train"])
    with pytest.raises(ValueError, match="splits"):
        write_yolo_dataset(samples, tmp_path / "out", [PERSON], splits=["train", "test"])
