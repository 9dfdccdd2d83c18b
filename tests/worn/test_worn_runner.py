"""The split file through the real ultralytics predict path, with an untrained tiny YOLO (fast, CPU).

Untrained weights find nobody at the default threshold; with a near-zero threshold every image gets
boxes, which exercises the worn/box columns. Detection quality is asserted in test_split_tiny.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashiontag.core.config import load_config
from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.core.skips import SkipReport
from fashiontag.data.worn_file import WRITTEN_COLUMNS, dataset_tag, list_images, read_split
from fashiontag.fashionai.format import label_string, write_labels, write_questions
from fashiontag.worn import runner
from fashiontag.worn.runner import run_split
from fashiontag.yolo import person_detector as detect

KEY = "skirt_length_labels"


def make_root(root: Path, n: int = 10, test: bool = False) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        rel = f"Images/{KEY}/img{i:02d}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 32, 3), dtype=np.uint8)).save(root / rel)
        rows.append((rel, KEY, label_string(i % 6, 6)))
    df = pd.DataFrame(rows, columns=["image", "key", "label"])
    (write_questions if test else write_labels)(root, df)
    return root


def cfg_for(tmp_path: Path, weights: Path, **split) -> dict:
    sets = [f"worn.weights={weights}", f"worn.out_dir={tmp_path / 'split'}", "worn.batch=4",
            "worn.imgsz=64", "worn.device=cpu", f"cache.dir={tmp_path / 'cache'}"]
    return load_config(None, sets + [f"worn.{k}={v}" for k, v in split.items()])


def test_split_file_format_and_cache(tmp_path, untrained_weights):
    root = make_root(tmp_path / "ds" / "train")
    cfg = cfg_for(tmp_path, untrained_weights)
    df, path = run_split(root, cfg)
    assert path == tmp_path / "split" / "ds_train.csv"  # generic folder names get the parent's name
    back = read_split(path)
    assert list(back.columns) == WRITTEN_COLUMNS
    assert back["image"].tolist() == [f"Images/{KEY}/img{i:02d}.jpg" for i in range(10)]
    assert back["worn"].dtype == bool and not back["worn"].any()  # untrained: nobody at conf 0.4
    assert (back["weights_md5"] == detect.file_md5(untrained_weights)).all()
    assert set(back["detector"]) == {"untrained.pt"} and set(back["imgsz"]) == {64}
    # A rerun detects nothing new.
    calls = []
    real = runner.detect_people

    def counting(det, images, conf):
        calls.append(len(images))
        return real(det, images, conf)

    runner.detect_people, saved = counting, runner.detect_people
    try:
        run_split(root, cfg)
    finally:
        runner.detect_people = saved
    assert calls == []


def test_low_threshold_gives_boxes(tmp_path, untrained_weights):
    root = make_root(tmp_path / "ds", n=4, test=True)  # a test root (question.csv) works too
    df, _ = run_split(root, cfg_for(tmp_path, untrained_weights, conf=0.0001, rule="box"))  # the detector alone
    assert df["worn"].all() and (df["persons"] > 0).all()
    boxes = df[["x0", "y0", "x1", "y1"]].to_numpy()
    assert np.all((boxes >= 0) & (boxes <= 1)) and np.all(boxes[:, 2] >= boxes[:, 0])
    assert df["conf"].between(0.0001, 1).all()


def test_resume_after_interruption(tmp_path, untrained_weights, monkeypatch):
    root = make_root(tmp_path / "ds", n=10)
    cfg = cfg_for(tmp_path, untrained_weights, save_every=1)
    real, calls = runner.detect_people, []

    def dies_on_third(det, images, conf):
        calls.append(len(images))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(det, images, conf)

    monkeypatch.setattr(runner, "detect_people", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_split(root, cfg)
    partials = list((tmp_path / "split").glob(".ds.*.partial.csv"))
    assert len(partials) == 1 and len(read_split(partials[0])) == 8  # two batches of 4 were saved
    assert not (tmp_path / "split" / "ds.csv").exists()
    calls.clear()
    monkeypatch.setattr(runner, "detect_people", lambda d, i, c: calls.append(len(i)) or real(d, i, c))
    df, path = run_split(root, cfg)
    assert calls == [2] and len(df) == 10 and path.exists()
    assert not list((tmp_path / "split").glob(".*.partial.csv"))


def test_other_detector_needs_force(tmp_path, untrained_weights):
    root = make_root(tmp_path / "ds", n=3)
    run_split(root, cfg_for(tmp_path, untrained_weights))
    with pytest.raises(FashiontagError, match="--force"):
        run_split(root, cfg_for(tmp_path, untrained_weights, imgsz=96))
    df, _ = run_split(root, cfg_for(tmp_path, untrained_weights, imgsz=96), force=True)
    assert set(df["imgsz"]) == {96}


def test_bad_image_is_named_or_skipped(tmp_path, untrained_weights):
    root = make_root(tmp_path / "ds", n=3)
    (root / f"Images/{KEY}/img01.jpg").write_bytes(b"not a jpeg")
    cfg = cfg_for(tmp_path, untrained_weights)
    with pytest.raises(DataError, match="img01.jpg"):
        run_split(root, cfg)
    df, path = run_split(root, cfg, skips=SkipReport(skip=True))
    assert len(df) == 2 and "img01" not in " ".join(df["image"])
    report = pd.read_csv(path.with_suffix(".skipped.csv"))
    assert report["file"].str.endswith("img01.jpg").all() and len(report) == 1


def test_plain_image_folder_and_tags(tmp_path):
    folder = tmp_path / "clothes"
    for cls in ("dress", "shirt"):
        (folder / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(folder / cls / "a.jpg")
    (folder / "notes.txt").write_text("x")
    assert list_images(folder) == ["dress/a.jpg", "shirt/a.jpg"]
    assert dataset_tag(tmp_path / "x" / "validation") == "x_validation"
    with pytest.raises(DataError, match="no images"):
        list_images(_empty(tmp_path))


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def test_weights_resolution_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(detect, "is_online", lambda: False)
    with pytest.raises(FashiontagError, match=r"worn.weights=/path/to/best.pt"):
        detect.resolve_weights("yolo11n.pt", tmp_path)
    with pytest.raises(FashiontagError, match="not found"):
        detect.resolve_weights(str(tmp_path / "missing.pt"), tmp_path)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "yolo11n.pt").write_bytes(b"x")  # a cached download is used offline
    assert detect.resolve_weights("yolo11n.pt", tmp_path) == str(tmp_path / "weights" / "yolo11n.pt")


def test_corrupt_weights_one_clear_error(tmp_path):
    bad = tmp_path / "best.pt"
    bad.write_bytes(b"junk")
    with pytest.raises(FashiontagError, match="cannot load"):
        detect.load_detector(str(bad), device="cpu")


def test_unreadable_split_file(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("image,worn\na.jpg,True\n")
    with pytest.raises(DataError, match="missing columns"):
        read_split(path)
