"""VOC XML and Dataturks JSON converters: known boxes round-trip into YOLO labels; bad input is reported."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fashiontag.cli import main
from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.core.skips import SkipReport
from fashiontag.data.boxes import Box
from fashiontag.detect.classes import ALIASES, DEFAULT_CLASSES
from fashiontag.detect.convert_dataturks import read_dataturks
from fashiontag.detect.convert_voc import parse_voc, read_voc_folder
from fashiontag.synth.garment_boxes import write_demo_images, write_images
from fashiontag.yolo.dataset import ClassMap, split_images, write_yolo_dataset

CLASSES = DEFAULT_CLASSES


def voc_xml(filename: str, size: tuple[int, int], boxes: list[Box]) -> str:
    """VOC stores 1-based inclusive pixel indices: continuous [x1, x2) is xmin=x1+1, xmax=x2."""
    objs = "".join(
        f"<object><name>{b.label}</name><bndbox><xmin>{b.x1 + 1:g}</xmin><ymin>{b.y1 + 1:g}</ymin>"
        f"<xmax>{b.x2:g}</xmax><ymax>{b.y2:g}</ymax></bndbox></object>"
        for b in boxes
    )
    return (f"<annotation><filename>{filename}</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{objs}</annotation>")


def dataturks_line(content: str, size: tuple[int, int], boxes: list[Box]) -> str:
    w, h = size
    ann = [{"label": [b.label], "points": [{"x": b.x2 / w, "y": b.y1 / h}, {"x": b.x1 / w, "y": b.y2 / h}],
            "imageWidth": w * 2, "imageHeight": h * 2}  # tool size differs: points are normalised
           for b in boxes]
    return json.dumps({"content": content, "annotation": ann, "extras": None})


def expected_yolo(boxes: list[Box], size: tuple[int, int]) -> list[list[float]]:
    w, h = size
    return [[CLASSES.index(b.label), (b.x1 + b.x2) / 2 / w, (b.y1 + b.y2) / 2 / h,
             (b.x2 - b.x1) / w, (b.y2 - b.y1) / h] for b in boxes]


def read_yolo_labels(out: Path) -> dict[str, list[list[float]]]:
    labels = {}
    for split in ("train", "val"):
        for f in (out / "labels" / split).glob("*.txt"):
            labels[f.stem] = [[float(v) for v in line.split()] for line in f.read_text().splitlines()]
    return labels


def assert_round_trip(out: Path, items: list[tuple[Path, list[Box]]], size: tuple[int, int]) -> None:
    got = read_yolo_labels(out)
    assert len(got) == len(items)
    for path, boxes in items:
        rows = got[path.stem]
        assert len(rows) == len(boxes)
        for row, exp in zip(rows, expected_yolo(boxes, size), strict=True):
            assert row[0] == exp[0]
            assert row[1:] == pytest.approx(exp[1:], abs=1e-5)


@pytest.fixture
def garments(tmp_path: Path) -> list[tuple[Path, list[Box]]]:
    return write_images(tmp_path / "imgs", 10, CLASSES, seed=3, size=(128, 96), n_objects=2)


def test_voc_round_trip(tmp_path: Path, garments) -> None:
    for path, boxes in garments:
        path.with_suffix(".xml").write_text(voc_xml(path.name, (128, 96), boxes))
    out = tmp_path / "yolo"
    summary = write_yolo_dataset(read_voc_folder(tmp_path / "imgs"), out, CLASSES, seed=1)
    assert_round_trip(out, garments, (128, 96))
    assert summary["images"] == {"train": 8, "val": 2}
    assert summary["bad_boxes"] == 0
    assert sum(summary["boxes_per_class"].values()) == 20
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == dict(enumerate(CLASSES))
    assert (out / data["train"]).is_dir() and len(list((out / data["val"]).iterdir())) == 2
    # every image lies beside its label under the same split
    for split in ("train", "val"):
        stems = {p.stem for p in (out / "images" / split).iterdir()}
        assert stems == {p.stem for p in (out / "labels" / split).iterdir()}


def test_voc_round_trip_on_demo_photos(tmp_path: Path) -> None:
    """The demo generator's photos (synth/demo.py render_sample) with their exact garment boxes."""
    items = write_demo_images(tmp_path / "demo", 6, seed=1, size=96)
    for path, boxes in items:
        path.with_suffix(".xml").write_text(voc_xml(path.name, (96, 96), boxes))
    summary = write_yolo_dataset(read_voc_folder(tmp_path / "demo"), tmp_path / "yolo", CLASSES, seed=0)
    assert summary["bad_boxes"] == 0 and summary["boxes_per_class"]["skirt"] == 3
    assert_round_trip(tmp_path / "yolo", items, (96, 96))


def test_dataturks_round_trip_with_cached_urls(tmp_path: Path, garments) -> None:
    lines = []
    for i, (path, boxes) in enumerate(garments):
        # half local relative paths, half URLs whose files are in the --images cache folder
        content = f"imgs/{path.name}" if i % 2 else f"http://example.com/x/{path.name}"
        lines.append(dataturks_line(content, (128, 96), boxes))
    jsonl = tmp_path / "clothing.json"
    jsonl.write_text("\n".join(lines) + "\n")
    out = tmp_path / "yolo"
    write_yolo_dataset(read_dataturks(jsonl, images_dir=tmp_path / "imgs"), out, CLASSES)
    assert_round_trip(out, garments, (128, 96))


def test_split_is_seeded_and_80_20() -> None:
    a, b, c = split_images(50, 0.2, 7), split_images(50, 0.2, 7), split_images(50, 0.2, 8)
    assert a == b and a != c
    assert a.count("val") == 10
    assert split_images(2, 0.2, 0).count("val") == 1  # never an empty val split


def test_bad_boxes_are_reported_and_dropped(tmp_path: Path) -> None:
    (path, boxes), = write_images(tmp_path, 1, ["skirt"], seed=0, size=(100, 80))
    bad = [
        Box("dress", 10, 10, 30, 30),          # not one of the classes
        Box("shoes", 40, 40, 40, 60),          # zero width
        Box("shirt", 50, 20, 140, 60),         # far outside the 100 px width
        Box("T-Shirts", 60, 10, 100.5, 40),    # alias spelling + rounding overshoot: kept (clipped)
    ]
    path.with_suffix(".xml").write_text(voc_xml(path.name, (100, 80), boxes + bad))
    out = tmp_path / "yolo"
    summary = write_yolo_dataset(read_voc_folder(tmp_path), out, CLASSES, val_fraction=0.0)
    assert summary["bad_boxes"] == 3
    report = pd.read_csv(out / "bad_boxes.csv")
    assert sorted(report["label"]) == ["dress", "shirt", "shoes"]
    reasons = " ".join(report["reason"])
    assert "unknown label 'dress'" in reasons and "zero or negative area" in reasons and "outside" in reasons
    rows = read_yolo_labels(out)[path.stem]
    assert [int(r[0]) for r in rows] == [CLASSES.index("skirt"), CLASSES.index("t-shirt")]
    assert rows[1][1] + rows[1][3] / 2 == pytest.approx(1.0, abs=1e-5)  # clipped to the right edge


def test_image_without_valid_box_is_dropped(tmp_path: Path) -> None:
    items = write_images(tmp_path, 3, ["top"], seed=0, size=(64, 64))
    for i, (path, boxes) in enumerate(items):
        if i == 0:
            boxes = [Box("hat", 1, 1, 10, 10)]
        path.with_suffix(".xml").write_text(voc_xml(path.name, (64, 64), boxes))
    out = tmp_path / "yolo"
    summary = write_yolo_dataset(read_voc_folder(tmp_path), out, CLASSES, val_fraction=0.5)
    assert summary["dropped_images"] == 1
    assert sum(summary["images"].values()) == 2
    assert "img_000" not in read_yolo_labels(out)


def test_uncached_url_is_an_error_or_a_counted_skip(tmp_path: Path) -> None:
    items = write_images(tmp_path / "imgs", 1, ["jeans"], seed=0, size=(64, 64))
    jsonl = tmp_path / "a.json"
    jsonl.write_text(dataturks_line(f"imgs/{items[0][0].name}", (64, 64), items[0][1]) + "\n"
                     + dataturks_line("https://cdn.example.com/missing.jpg", (64, 64), items[0][1]) + "\n"
                     + "{not json\n")
    with pytest.raises(DataError, match=r"a\.json:2: image URL https://cdn.example.com/missing.jpg is not cached"):
        read_dataturks(jsonl, tmp_path / "imgs")
    skips = SkipReport(skip=True)
    samples = read_dataturks(jsonl, tmp_path / "imgs", skips)
    assert len(samples) == 1 and len(skips) == 2
    assert {r["line"] for r in skips.rows} == {2, 3}
    summary = write_yolo_dataset(samples, tmp_path / "yolo", CLASSES, bad_images=skips.rows)
    assert summary["rejected_inputs"] == 2
    assert len(pd.read_csv(tmp_path / "yolo" / "bad_boxes.csv")) == 2


def test_voc_errors_name_the_file(tmp_path: Path) -> None:
    (path, boxes), = write_images(tmp_path, 1, ["top"], seed=0, size=(64, 48))
    xml = path.with_suffix(".xml")
    xml.write_text(voc_xml(path.name, (640, 480), boxes))
    with pytest.raises(DataError, match=r"img_000\.xml: <size> says 640x480 but img_000\.png is 64x48"):
        parse_voc(xml)
    xml.write_text("<annotation><filename>img_000.png</filename")
    with pytest.raises(DataError, match="invalid XML"):
        parse_voc(xml)
    xml.write_text(voc_xml("nope.png", (64, 48), boxes))
    with pytest.raises(DataError, match="image 'nope.png' not found"):
        parse_voc(xml)


def test_class_map_normalises_spellings() -> None:
    cmap = ClassMap(CLASSES, ALIASES)
    assert cmap.index("Tshirt") == cmap.index("T-Shirts") == CLASSES.index("t-shirt")
    assert cmap.index("Jeans") == CLASSES.index("jeans")
    assert cmap.index("pants") == CLASSES.index("trousers")
    assert cmap.index("Sunglasses") == CLASSES.index("sunglasses")
    assert cmap.index("dress") is None


def test_cli_convert_refuses_to_overwrite(tmp_path: Path, garments, capsys) -> None:
    for path, boxes in garments:
        path.with_suffix(".xml").write_text(voc_xml(path.name, (128, 96), boxes))
    args = ["detect-convert", "voc", str(tmp_path / "imgs"), str(tmp_path / "yolo"), "--seed", "2"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["images"] == {"train": 8, "val": 2}
    assert main(args) == 2  # data.yaml exists: refused
    assert main(args + ["--force"]) == 0
    with pytest.raises(FashiontagError, match="no .xml"):
        read_voc_folder(tmp_path / "yolo" / "labels")
