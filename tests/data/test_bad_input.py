"""Every bad-input case of the foundation issue: a clear message naming the file and line, or a counted skip.

Images are checked through `fashiontag check-data` (the command users run) and the library calls under it;
label-table problems through read_labels / read_questions.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from PIL import Image

from fashiontag.cli import main
from fashiontag.core.errors import DataError
from fashiontag.core.skips import SkipReport
from fashiontag.data.images import open_rgb
from fashiontag.fashionai.format import LABEL_CSV, QUESTION_CSV, read_labels, read_questions

KEY = "garment_type_labels"


def _break(path, how: str) -> None:
    """Damage a valid JPEG in place."""
    data = path.read_bytes()
    if how == "corrupt":
        path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "zero-byte":
        path.write_bytes(b"")
    elif how == "missing":
        path.unlink()


def _line_of(root, image: str, csv=LABEL_CSV) -> int:
    lines = (root / csv).read_text().splitlines()
    return next(i for i, text in enumerate(lines, start=1) if text.startswith(image + ","))


@pytest.fixture
def big_root(make_fashionai_root, tmp_path):
    """Images large enough that half a file is really truncated pixel data."""
    root = make_fashionai_root(tmp_path / "d", keys={KEY: ["a", "b"]}, per_value=2)
    for img in (root / "Images" / KEY).iterdir():
        Image.effect_noise((96, 96), 60).convert("RGB").save(img, quality=90)
    return root


@pytest.mark.parametrize("how, reason", [
    ("corrupt", "not a readable image|corrupt or truncated"),
    ("truncated", "corrupt or truncated"),
    ("zero-byte", r"empty \(0 bytes\)"),
    ("missing", "image file is missing"),
])
def test_bad_image_stops_check_data_naming_file_and_line(big_root, capsys, how, reason):
    labels = read_labels(big_root)
    image = labels["image"].iloc[2]
    _break(big_root / image, how)
    assert main(["check-data", str(big_root)]) == 2
    err = capsys.readouterr().err
    line = _line_of(big_root, image)
    assert f"{big_root / LABEL_CSV}:{line}: {image}:" in err, err
    assert re.search(reason, err), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    with pytest.raises(DataError, match=reason) as info:
        open_rgb(big_root / image, line)
    assert info.value.path == str(big_root / image) and info.value.line == line


def test_check_data_skip_bad_counts_every_problem(big_root, capsys):
    labels = read_labels(big_root)
    for image, how in zip(labels["image"].iloc[:3], ["corrupt", "truncated", "zero-byte"], strict=True):
        _break(big_root / image, how)
    assert main(["check-data", str(big_root), "--skip-bad"]) == 1
    assert "3 problems" in capsys.readouterr().out
    report = pd.read_csv(big_root / "check_skips.csv")
    assert len(report) == 3 and set(report["line"]) == {1, 2, 3}
    assert (report["file"] == str(big_root / LABEL_CSV)).all()


@pytest.mark.parametrize("mode, fmt", [("CMYK", "JPEG"), ("L", "PNG"), ("RGBA", "PNG")])
def test_non_rgb_images_are_converted(write_image, tmp_path, mode, fmt):
    path = write_image(tmp_path / f"img.{fmt.lower()}", mode=mode, fmt=fmt)
    with Image.open(path) as raw:
        assert raw.mode == mode
    img = open_rgb(path)
    assert img.mode == "RGB" and img.size == (16, 12)
    # The same files listed in a dataset pass check-data.
    root = tmp_path / "root"
    target = root / "Images" / "skirt_length_labels" / path.name
    target.parent.mkdir(parents=True)
    target.write_bytes(path.read_bytes())
    (root / LABEL_CSV).parent.mkdir(parents=True)
    (root / LABEL_CSV).write_text(f"Images/skirt_length_labels/{path.name},skirt_length_labels,nnnnny\n")
    assert main(["check-data", str(root)]) == 0


def test_rgba_is_composited_on_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(path)
    assert open_rgb(path).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("label, message", [
    ("ynnnn", "has 5 characters; the key has 6 values"),
    ("nnnnnn", "must have exactly one 'y', has 0"),
    ("ynnnny", "must have exactly one 'y', has 2"),
    ("ynnnnx", "has characters other than y/n/m: x"),
])
def test_bad_label_strings_name_file_and_line(tmp_path, label, message):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / LABEL_CSV).write_text(
        "Images/skirt_length_labels/a.jpg,skirt_length_labels,ynnnnn\n"
        f"Images/skirt_length_labels/b.jpg,skirt_length_labels,{label}\n"
    )
    with pytest.raises(DataError, match=rf"label.csv:2: label '{label}' {message}") as info:
        read_labels(tmp_path)
    assert info.value.line == 2 and info.value.path == str(tmp_path / LABEL_CSV)
    skips = SkipReport(skip=True)
    assert len(read_labels(tmp_path, skips=skips)) == 1
    assert len(skips) == 1 and skips.rows[0]["line"] == 2


def test_unknown_key_without_attributes_csv(tmp_path, capsys):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / LABEL_CSV).write_text("Images/fabric_labels/a.jpg,fabric_labels,yn\n")
    with pytest.raises(DataError, match=r"label.csv:1: unknown attribute key 'fabric_labels': not official "
                                        r"and not in Annotations/attributes.csv"):
        read_labels(tmp_path)
    assert main(["check-data", str(tmp_path)]) == 2
    assert "label.csv:1: unknown attribute key" in capsys.readouterr().err


def test_duplicate_rows_name_both_lines(tmp_path):
    (tmp_path / "Annotations").mkdir()
    row = "Images/skirt_length_labels/a.jpg,skirt_length_labels,ynnnnn\n"
    (tmp_path / LABEL_CSV).write_text(row + "Images/skirt_length_labels/b.jpg,skirt_length_labels,nynnnn\n" + row)
    with pytest.raises(DataError, match=r"label.csv:3: duplicate row for Images/skirt_length_labels/a.jpg "
                                        r"\(skirt_length_labels\); first seen at line 1"):
        read_labels(tmp_path)
    (tmp_path / "Tests").mkdir()
    (tmp_path / QUESTION_CSV).write_text("x.jpg,neck_design_labels,?\nx.jpg,neck_design_labels,?\n")
    with pytest.raises(DataError, match=r"question.csv:2: duplicate row"):
        read_questions(tmp_path)


def test_question_csv_naming_missing_images(fashionai_root, make_fashionai_root, tmp_path, capsys):
    test = make_fashionai_root(tmp_path / "demo" / "test", per_value=1, labelled=False)
    gone = read_questions(test)["image"].iloc[3]
    (test / gone).unlink()
    assert main(["check-data", str(fashionai_root), "--test", str(test)]) == 2
    err = capsys.readouterr().err
    assert f"{test / QUESTION_CSV}:4: {gone}: image file is missing" in err, err
    assert main(["check-data", str(fashionai_root), "--test", str(test), "--skip-bad"]) == 1
    out = capsys.readouterr().out
    assert "27 of 27 labelled images" in out and "8 of 9 question images" in out
    report = pd.read_csv(fashionai_root / "check_skips.csv")
    assert report[["file", "line"]].values.tolist() == [[str(test / QUESTION_CSV), 4]]


def test_check_data_on_an_empty_folder(tmp_path, capsys):
    assert main(["check-data", str(tmp_path)]) == 2
    assert "nothing to check" in capsys.readouterr().err


def test_bad_csv_shape_names_line(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / LABEL_CSV).write_text("a.jpg,skirt_length_labels\n")
    with pytest.raises(DataError, match=r"label.csv:1: expected 3 columns \(image,key,label\), got 2"):
        read_labels(tmp_path)
