"""Bad images and label tables: a clear message naming the file and line, or a counted skip.

Images are checked through `fashiontag check-data` (the command users run) and the library calls under it;
label-table problems through read_labels / read_questions.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashiontag.cli import main
from fashiontag.core.errors import DataError
from fashiontag.core.skips import SkipReport
from fashiontag.data.images import open_rgb, verify_images
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


# ---------------------------------------------------------------- the one image loader: modes, size, orientation


@pytest.mark.parametrize("make, pixel", [
    (lambda p: Image.fromarray(np.full((4, 4), 32768, np.uint16)).save(p), (128, 128, 128)),  # I;16, not white
    (lambda p: Image.fromarray(np.full((4, 4), 0.25, np.float32)).save(p), (64, 64, 64)),  # F in 0..1
    (lambda p: Image.fromarray(np.full((4, 4), 200.0, np.float32)).save(p), (200, 200, 200)),  # F in 0..255
    (lambda p: Image.fromarray(np.full((4, 4), 100, np.int32)).save(p), (100, 100, 100)),  # I holding 8-bit data
    (lambda p: Image.fromarray(np.full((4, 4), 65535, np.int32)).save(p), (255, 255, 255)),  # I holding 16-bit
    (lambda p: Image.new("1", (4, 4), 1).save(p), (255, 255, 255)),
    (lambda p: Image.new("LA", (4, 4), (0, 255)).save(p), (0, 0, 0)),  # opaque black stays black
])
def test_high_bit_depth_and_odd_modes_are_scaled_not_clipped(tmp_path, make, pixel):
    path = tmp_path / "img.tif"
    make(path)
    img = open_rgb(path)
    assert img.mode == "RGB" and img.getpixel((0, 0)) == pixel


def test_float_image_outside_known_ranges_is_stretched(tmp_path):
    path = tmp_path / "depth.tif"
    Image.fromarray(np.array([[-5.0, 5.0], [0.0, np.nan]], np.float32)).save(path)
    img = open_rgb(path)
    assert img.getpixel((0, 0))[0] == 0 and img.getpixel((1, 0))[0] == 255


def test_transparency_is_composited_on_the_fill(tmp_path):
    path = tmp_path / "p.png"
    img = Image.new("P", (4, 4), 0)
    img.putpalette([255, 0, 0] * 256)
    img.save(path, transparency=0)
    assert open_rgb(path).getpixel((0, 0)) == (255, 255, 255)
    assert open_rgb(path, fill=(0, 0, 0)).getpixel((0, 0)) == (0, 0, 0)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 CW to view
    Image.new("RGB", (30, 10), (0, 0, 255)).save(path, exif=exif)
    assert open_rgb(path).size == (10, 30)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bombs_are_named_bad_images(tmp_path, monkeypatch):
    from helpers.bad_inputs import bomb_png

    huge = bomb_png(tmp_path / "huge.png")  # beyond twice the limit: PIL raises on open
    with pytest.raises(DataError, match=r"huge\.png:7: image too large .*2500000000 pixels") as info:
        open_rgb(huge, 7)
    assert info.value.line == 7
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 40)).save(small)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # over the limit, under twice it: PIL only warns
    with pytest.raises(DataError, match=r"image too large .*40x40 = 1600 pixels, over the limit of 1000"):
        open_rgb(small)
    skips = SkipReport(skip=True)
    table = pd.DataFrame({"image": ["small.png", "huge.png"], "line": [1, 2]})
    assert len(verify_images(tmp_path, table, skips, source=tmp_path / "label.csv")) == 0
    assert [r["line"] for r in skips.rows] == [1, 2]


def test_paths_outside_the_root_are_refused_everywhere(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / LABEL_CSV).write_text(f"../x.jpg,{'skirt_length_labels'},ynnnnn\n")
    with pytest.raises(DataError, match=r"label\.csv:1: image path '\.\./x\.jpg' climbs out"):
        read_labels(tmp_path)
    table = pd.DataFrame({"image": ["/etc/hostname"], "line": [4]})
    with pytest.raises(DataError, match=r"label\.csv:4: /etc/hostname: image path is absolute"):
        verify_images(tmp_path, table, SkipReport(skip=False), source=tmp_path / "label.csv")
    from fashiontag.fashionai.format import Dataset

    dataset = Dataset(tmp_path, {}, pd.DataFrame())
    with pytest.raises(DataError, match="climbs out"):
        dataset.image_path("Images/../../x.jpg")
    assert dataset.image_path("Images/k/a.jpg") == tmp_path / "Images/k/a.jpg"


def test_writers_refuse_unsafe_keys_and_paths(tmp_path):
    from fashiontag.fashionai.format import write_attributes, write_labels

    with pytest.raises(DataError, match=r"attributes\.csv: attribute key '\.\./k' may only use"):
        write_attributes(tmp_path, {"../k": ["a", "b"]})
    bad = pd.DataFrame({"image": ["/abs.jpg"], "key": ["skirt_length_labels"], "label": ["ynnnnn"]})
    with pytest.raises(DataError, match=r"label\.csv:1: image path '/abs\.jpg' is absolute"):
        write_labels(tmp_path, bad)
    assert not (tmp_path / LABEL_CSV).exists()
