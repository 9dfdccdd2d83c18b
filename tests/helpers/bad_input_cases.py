"""The bad-input corpus, part 1: images, label files, question files and submissions.

Each builder makes its inputs under the case folder (the working directory when the command runs) and
returns the Case: the command line and its exact outcome. Registered by category in CASES.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.bad_inputs import (
    CUSTOM_KEY,
    KEY,
    Case,
    bomb_png,
    class_folders,
    cmyk_jpeg,
    custom_attributes,
    exif_rotated_jpeg,
    la_png,
    label_lines,
    palette_png_transparent,
    png16,
    question_root,
    set_label_lines,
    submission_for,
    tiff,
    train_root,
    write_text,
)

CASES: dict[str, tuple[str, Callable[[Path], Case]]] = {}
LABELS = r"shop/Annotations/label\.csv"
QUESTIONS = r"test/Tests/question\.csv"
IMG = rf"Images/{KEY}"


def case(category: str):
    def register(fn: Callable[[Path], Case]) -> Callable[[Path], Case]:
        CASES[fn.__name__] = (category, fn)
        return fn
    return register


def _check(*extra: str) -> list[str]:
    return ["check-data", "shop", *extra]


def _replace_image(tmp: Path, i: int, make: Callable[[Path], Path], name: str | None = None) -> str:
    """Put `make`'s file in place of image s{i} (line i+1), under `name` if given; returns its label path."""
    train_root(tmp / "shop")
    old = tmp / "shop" / "Images" / KEY / f"s{i}.jpg"
    old.unlink()
    new = old.with_name(name) if name else old
    make(new)
    if name:
        lines = label_lines(tmp / "shop")
        lines[i] = lines[i].replace(f"s{i}.jpg", name)
        set_label_lines(tmp / "shop", lines)
    return f"Images/{KEY}/{new.name}"


def _pixel(path: Path, xy=(0, 0)):
    from fashiontag.data.images import open_rgb

    return open_rgb(path).getpixel(xy)


# ------------------------------------------------------------------ images


def _damaged(tmp: Path, how: str) -> None:
    train_root(tmp / "shop")
    path = tmp / "shop" / "Images" / KEY / "s2.jpg"
    if how == "truncated":
        Image.effect_noise((96, 96), 60).convert("RGB").save(path, quality=90)
        path.write_bytes(path.read_bytes()[:1500])
    elif how == "corrupt":
        path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "missing":
        path.unlink()
    elif how == "folder":
        path.unlink()
        path.mkdir()
        (path / "inside.txt").write_text("x")
    elif how == "text":
        path.write_text("<html>not an image</html>")


for _how, _reason in [("truncated", "corrupt or truncated image"), ("corrupt", "not a readable image"),
                      ("empty", r"image file is empty \(0 bytes\)"), ("missing", "image file is missing"),
                      ("folder", "is a folder, not an image file"), ("text", "not a readable image")]:
    def _build(tmp: Path, how=_how, reason=_reason) -> Case:
        _damaged(tmp, how)
        return Case(_check(), error=rf"{LABELS}:3: {IMG}/s2\.jpg: {reason}")
    _build.__name__ = f"image_{_how}"
    case("images")(_build)


@case("images")
def image_bomb_header(tmp: Path) -> Case:
    image = _replace_image(tmp, 4, bomb_png, "s4.png")
    return Case(_check(), error=rf"{LABELS}:5: {image}: image too large \(a decompression bomb\?\): 2500000000 pixels")


@case("images")
def image_bomb_between_limits(tmp: Path) -> Case:
    """10000 x 10000: over MAX_IMAGE_PIXELS but under twice it, where PIL only warns."""
    image = _replace_image(tmp, 4, lambda p: bomb_png(p, 10_000, 10_000), "s4.png")
    return Case(_check(), error=rf"{LABELS}:5: {image}: image too large .*10000x10000")


@case("images")
def image_bomb_skipped(tmp: Path) -> Case:
    _replace_image(tmp, 4, bomb_png, "s4.png")
    return Case(_check("--skip-bad"), rc=1, out=r"1 problems .* 11 of 12 labelled images",
                report=("shop/check_skips.csv", 1), creates=("shop/check_skips.csv",))


@case("images")
def image_bomb_import_skipped(tmp: Path) -> Case:
    class_folders(tmp / "src")
    bomb_png(tmp / "src" / "coat" / "huge.png")
    return Case(["import-folders", "src", "dst", "--attr", "garment_type", "--skip-bad"], rc=0,
                out=r"4 labelled images .* 1 skipped", report=("dst/import_skips.csv", 1),
                creates=("dst/*",))


@case("images")
def image_bomb_import_strict(tmp: Path) -> Case:
    class_folders(tmp / "src")
    bomb_png(tmp / "src" / "coat" / "huge.png")
    return Case(["import-folders", "src", "dst", "--attr", "garment_type"],
                error=r"src/coat/huge\.png: image too large")


def _gray(tmp: Path, make: Callable[[Path], Path], name: str, expect: tuple[int, int, int]) -> Case:
    image = _replace_image(tmp, 0, make, name)

    def check(work: Path) -> None:
        assert _pixel(work / "shop" / image) == expect

    return Case(_check(), rc=0, out=r"OK: 12 of 12 labelled images", check=check)


@case("images")
def image_png16_mid_grey(tmp: Path) -> Case:
    return _gray(tmp, png16, "s0.png", (128, 128, 128))


@case("images")
def image_float_tiff(tmp: Path) -> Case:
    return _gray(tmp, lambda p: tiff(p, np.full((8, 8), 0.25, np.float32)), "s0.tif", (64, 64, 64))


@case("images")
def image_int32_tiff(tmp: Path) -> Case:
    return _gray(tmp, lambda p: tiff(p, np.full((8, 8), 32896, np.int32)), "s0.tif", (128, 128, 128))


@case("images")
def image_palette_transparent(tmp: Path) -> Case:
    return _gray(tmp, palette_png_transparent, "s0.png", (255, 255, 255))


@case("images")
def image_la_transparent(tmp: Path) -> Case:
    return _gray(tmp, la_png, "s0.png", (255, 255, 255))


@case("images")
def image_cmyk(tmp: Path) -> Case:
    return _gray(tmp, cmyk_jpeg, "s0.jpg", (255, 0, 0))


@case("images")
def image_exif_rotated(tmp: Path) -> Case:
    image = _replace_image(tmp, 0, exif_rotated_jpeg)

    def check(work: Path) -> None:
        from fashiontag.data.images import open_rgb

        assert open_rgb(work / "shop" / image).size == (10, 30)

    return Case(_check(), rc=0, out=r"OK: 12 of 12", check=check)


@case("images")
def image_png16_import(tmp: Path) -> Case:
    """import-folders converts a 16-bit PNG to a mid-grey JPEG (it used to write a white one)."""
    class_folders(tmp / "src")
    png16(tmp / "src" / "coat" / "scan.png", level=16384)

    def check(work: Path) -> None:
        out = work / "dst" / "Images" / "garment_type_labels" / "coat_scan.jpg"
        with Image.open(out) as img:
            assert abs(np.asarray(img.convert("L"), dtype=float).mean() - 64) < 3

    return Case(["import-folders", "src", "dst", "--attr", "garment_type"], rc=0, out=r"5 labelled images.*1 converted",
                creates=("dst/*",), check=check)


# ------------------------------------------------------------------ label files


def _labels(tmp: Path, edit: Callable[[list[str]], None]) -> None:
    train_root(tmp / "shop")
    lines = label_lines(tmp / "shop")
    edit(lines)
    set_label_lines(tmp / "shop", lines)


@case("labels")
def labels_utf8_bom(tmp: Path) -> Case:
    train_root(tmp / "shop")
    path = tmp / "shop" / "Annotations" / "label.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    return Case(_check(), rc=0, out=r"OK: 12 of 12 labelled images")


@case("labels")
def labels_utf16_bom(tmp: Path) -> Case:
    train_root(tmp / "shop")
    path = tmp / "shop" / "Annotations" / "label.csv"
    path.write_bytes(path.read_text().encode("utf-16"))
    return Case(_check(), rc=0, out=r"OK: 12 of 12 labelled images")


@case("labels")
def labels_latin1(tmp: Path) -> Case:
    train_root(tmp / "shop")
    path = tmp / "shop" / "Annotations" / "label.csv"
    path.write_bytes(path.read_bytes().replace(b"s3.jpg", b"s3\xe9.jpg"))  # a Latin-1 file name
    return Case(_check(), error=rf"{LABELS}:4: not UTF-8 text: byte 0xe9")


@case("labels")
def labels_nul_byte(tmp: Path) -> Case:
    _labels(tmp, lambda L: L.__setitem__(1, L[1] + "\x00"))
    return Case(_check(), error=rf"{LABELS}:2: contains a NUL byte")


@case("labels")
def labels_empty(tmp: Path) -> Case:
    train_root(tmp / "shop")
    (tmp / "shop" / "Annotations" / "label.csv").write_bytes(b"")
    return Case(_check(), error=rf"{LABELS}: has no rows")


@case("labels")
def labels_blank_lines_only(tmp: Path) -> Case:
    train_root(tmp / "shop")
    (tmp / "shop" / "Annotations" / "label.csv").write_text("\n  \n,,\n")
    return Case(_check(), error=rf"{LABELS}: has no rows")


@case("labels")
def labels_is_a_folder(tmp: Path) -> Case:
    train_root(tmp / "shop")
    path = tmp / "shop" / "Annotations" / "label.csv"
    path.unlink()
    (path / "x").mkdir(parents=True)
    return Case(_check(), error=rf"{LABELS}: is a folder, expected a file")


@case("labels")
def labels_huge_field(tmp: Path) -> Case:
    _labels(tmp, lambda L: L.__setitem__(2, "x" * 200_000 + "," + KEY + ",ynnnnn"))
    return Case(_check(), error=rf"{LABELS}:3: malformed CSV: field larger than field limit")


@case("labels")
def labels_unclosed_quote(tmp: Path) -> Case:
    _labels(tmp, lambda L: L.__setitem__(10, '"' + L[10]))
    return Case(_check(), error=rf"{LABELS}:\d+: expected 3 columns \(image,key,label\), got 1")


for _name, _edit, _msg in [
    ("labels_two_columns", lambda L: L.__setitem__(1, f"{IMG}/s1.jpg,{KEY}"), r":2: expected 3 columns"),
    ("labels_short_label", lambda L: L.__setitem__(1, L[1][:-1]), r":2: label 'nynnn' has 5 characters"),
    ("labels_two_y", lambda L: L.__setitem__(1, L[1][:-1] + "y"), r":2: label 'nynnny' must have exactly one 'y'"),
    ("labels_bad_char", lambda L: L.__setitem__(1, L[1][:-1] + "?"), r":2: label 'nynnn\?' has characters other"),
    ("labels_unknown_key", lambda L: L.__setitem__(1, f"{IMG}/s1.jpg,fabric_labels,yn"), r":2: unknown attribute key"),
    ("labels_duplicate", lambda L: L.append(L[0]), r":13: duplicate row for .*s0\.jpg .* first seen at line 1"),
    ("labels_absolute_image", lambda L: L.__setitem__(2, f"/etc/hostname,{KEY},nnynnn"),
     r":3: image path '/etc/hostname' is absolute"),
    ("labels_dotdot_image", lambda L: L.__setitem__(2, f"Images/../../../outside.jpg,{KEY},nnynnn"),
     r":3: image path 'Images/\.\./\.\./\.\./outside\.jpg' climbs out of the dataset root"),
    ("labels_windows_drive", lambda L: L.__setitem__(2, f"C:\\x.jpg,{KEY},nnynnn"), r":3: image path .* is absolute"),
    ("labels_empty_image", lambda L: L.__setitem__(2, f",{KEY},nnynnn"), r":3: image path '' is empty"),
    ("labels_unsafe_key", lambda L: L.__setitem__(2, f"{IMG}/s2.jpg,../../evil,nnynnn"),
     r":3: attribute key '\.\./\.\./evil' may only use letters"),
]:
    def _build(tmp: Path, edit=_edit, msg=_msg) -> Case:
        _labels(tmp, edit)
        return Case(_check(), error=LABELS + msg)
    _build.__name__ = _name
    case("labels")(_build)


@case("labels")
def labels_dotdot_image_skipped(tmp: Path) -> Case:
    _labels(tmp, lambda L: L.__setitem__(2, f"../outside.jpg,{KEY},nnynnn"))
    return Case(_check("--skip-bad"), rc=1, out=r"1 problems .* 11 of 11 labelled images",
                report=("shop/check_skips.csv", 1), creates=("shop/check_skips.csv",))


def _attributes(tmp: Path, extra: str) -> None:
    train_root(tmp / "shop")
    custom_attributes(tmp / "shop", extra)


for _name, _extra, _msg in [
    ("attributes_dotdot_key", "../../evil,0,a\n", r":4: attribute key '\.\./\.\./evil' may only use"),
    ("attributes_absolute_key", "/tmp/evil,0,a\n", r":4: attribute key '/tmp/evil' may only use"),
    ("attributes_dot_key", ".,0,a\n", r":4: attribute key '\.' may not start with '\.'"),
    ("attributes_hidden_key", ".cache,0,a\n", r":4: attribute key '\.cache' may not start with '\.'"),
    ("attributes_bad_index", f"{CUSTOM_KEY},two,shirt\n", r":4: index 'two' is not an integer"),
    ("attributes_gap_index", f"{CUSTOM_KEY},3,shirt\n", r": indices for garment_type_labels must be 0\.\.2"),
    ("attributes_columns", "a,b\n", r":4: expected 3 columns \(key,index,value\)"),
]:
    def _build(tmp: Path, extra=_extra, msg=_msg) -> Case:
        _attributes(tmp, extra)
        return Case(_check(), error=r"shop/Annotations/attributes\.csv" + msg)
    _build.__name__ = _name
    case("labels")(_build)


@case("labels")
def attributes_bom_header(tmp: Path) -> Case:
    train_root(tmp / "shop")
    path = custom_attributes(tmp / "shop")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    return Case(_check(), rc=0, out=r"OK: 12 of 12")


@case("labels")
def attributes_latin1(tmp: Path) -> Case:
    train_root(tmp / "shop")
    path = custom_attributes(tmp / "shop")
    path.write_bytes(path.read_bytes() + f"{CUSTOM_KEY},2,caf".encode() + b"\xe9\n")
    return Case(_check(), error=r"shop/Annotations/attributes\.csv:4: not UTF-8 text: byte 0xe9")


# ------------------------------------------------------------------ question files


def _questions(tmp: Path, edit: Callable[[list[str]], None] | None = None) -> None:
    train_root(tmp / "shop")
    question_root(tmp / "test")
    if edit is not None:
        path = tmp / "test" / "Tests" / "question.csv"
        lines = path.read_text().splitlines()
        edit(lines)
        write_text(path, "\n".join(lines) + "\n")


@case("questions")
def questions_utf8_bom(tmp: Path) -> Case:
    _questions(tmp)
    path = tmp / "test" / "Tests" / "question.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    return Case(_check("--test", "test"), rc=0, out=r"OK: 12 of 12 labelled images; 4 of 4 question images")


@case("questions")
def questions_utf16(tmp: Path) -> Case:
    _questions(tmp)
    path = tmp / "test" / "Tests" / "question.csv"
    path.write_bytes(path.read_text().encode("utf-16"))
    return Case(_check("--test", "test"), rc=0, out=r"4 of 4 question images")


for _name, _edit, _msg in [
    ("questions_not_a_question_mark", lambda L: L.__setitem__(1, L[1][:-1] + "y"), r":2: third column must be '\?'"),
    ("questions_absolute_image", lambda L: L.__setitem__(1, f"/etc/hostname,{KEY},?"), r":2: image path .* is absolute"),
    ("questions_dotdot_image", lambda L: L.__setitem__(1, f"Images/../../shop/Images/{KEY}/s0.jpg,{KEY},?"),
     r":2: image path .* climbs out"),
    ("questions_unknown_key", lambda L: L.__setitem__(1, f"{IMG}/q1.jpg,fabric_labels,?"), r":2: unknown attribute key"),
    ("questions_duplicate", lambda L: L.append(L[0]), r":5: duplicate row"),
    ("questions_empty", lambda L: L.clear(), r": has no rows"),
    ("questions_missing_image", lambda L: L.__setitem__(2, f"{IMG}/gone.jpg,{KEY},?"),
     r":3: Images/skirt_length_labels/gone\.jpg: image file is missing"),
]:
    def _build(tmp: Path, edit=_edit, msg=_msg) -> Case:
        _questions(tmp, edit)
        return Case(_check("--test", "test"), error=QUESTIONS + msg)
    _build.__name__ = _name
    case("questions")(_build)


@case("questions")
def questions_latin1(tmp: Path) -> Case:
    _questions(tmp)
    path = tmp / "test" / "Tests" / "question.csv"
    path.write_bytes(path.read_bytes() + b"Images/x/\xff.jpg,skirt_length_labels,?\n")
    return Case(_check("--test", "test"), error=QUESTIONS + r":5: not UTF-8 text: byte 0xff")


@case("questions")
def questions_missing_image_skipped(tmp: Path) -> Case:
    _questions(tmp, lambda L: L.__setitem__(2, f"{IMG}/gone.jpg,{KEY},?"))
    return Case(_check("--test", "test", "--skip-bad"), rc=1, out=r"1 problems .* 3 of 4 question images",
                report=("shop/check_skips.csv", 1), creates=("shop/check_skips.csv",))


# ------------------------------------------------------------------ submissions and scoring


def _scoring(tmp: Path, edit: Callable[[list[str]], None] | None = None) -> None:
    train_root(tmp / "shop")
    answers = write_text(tmp / "answers.csv", (tmp / "shop" / "Annotations" / "label.csv").read_text())
    sub = submission_for(answers, tmp / "sub.csv")
    if edit is not None:
        lines = sub.read_text().splitlines()
        edit(lines)
        write_text(sub, "\n".join(lines) + ("\n" if lines else ""))


def _set_probs(i: int, text: str) -> Callable[[list[str]], None]:
    return lambda L: L.__setitem__(i, ",".join(L[i].split(",")[:2] + [text]))


SCORE = ["score", "sub.csv", "--answers", "answers.csv"]

for _name, _edit, _msg in [
    ("score_underscore_number", _set_probs(1, "0.5_0;0.1;0.1;0.1;0.1;0.1"), r"sub\.csv:2: '0\.5_0' is not a number"),
    ("score_nan", _set_probs(1, "nan;0.1;0.1;0.1;0.1;0.1"), r"sub\.csv:2: non-finite probability"),
    ("score_hex_number", _set_probs(1, "0x1;0;0;0;0;0"), r"sub\.csv:2: '0x1' is not a number"),
    ("score_negative", _set_probs(1, "1.2;-0.2;0;0;0;0"), r"sub\.csv:2: probability outside \[0, 1\]"),
    ("score_wrong_count", _set_probs(1, "0.5;0.5"), r"sub\.csv:2: skirt_length_labels has 6 values but the row has 2"),
    ("score_empty_submission", lambda L: L.clear(), r"sub\.csv: has no rows"),
]:
    def _build(tmp: Path, edit=_edit, msg=_msg) -> Case:
        _scoring(tmp, edit)
        return Case(SCORE, error=msg)
    _build.__name__ = _name
    case("submissions")(_build)


@case("submissions")
def score_empty_answers(tmp: Path) -> Case:
    _scoring(tmp)
    (tmp / "answers.csv").write_bytes(b"")
    return Case(SCORE, error=r"answers\.csv: has no rows")


@case("submissions")
def score_answers_is_a_folder(tmp: Path) -> Case:
    _scoring(tmp)
    (tmp / "answers.csv").unlink()
    (tmp / "answers.csv").mkdir()
    (tmp / "answers.csv" / "keep").write_text("x")
    return Case(SCORE, error=r"answers\.csv: is a folder, expected a file")


@case("submissions")
def score_submission_latin1(tmp: Path) -> Case:
    _scoring(tmp)
    with open(tmp / "sub.csv", "ab") as fh:
        fh.write(b"Images/\xe9.jpg,skirt_length_labels,1;0;0;0;0;0\n")
    return Case(SCORE, error=r"sub\.csv:13: not UTF-8 text: byte 0xe9")


@case("submissions")
def score_submission_bom(tmp: Path) -> Case:
    _scoring(tmp)
    (tmp / "sub.csv").write_bytes(b"\xef\xbb\xbf" + (tmp / "sub.csv").read_bytes())
    return Case(SCORE, rc=0, out=r"skirt_length_labels\s+12")


@case("submissions")
def score_submission_crlf(tmp: Path) -> Case:
    _scoring(tmp)
    (tmp / "sub.csv").write_bytes((tmp / "sub.csv").read_bytes().replace(b"\n", b"\r\n"))
    return Case(SCORE, rc=0, out=r"skirt_length_labels\s+12")


@case("submissions")
def score_submission_missing(tmp: Path) -> Case:
    _scoring(tmp)
    (tmp / "sub.csv").unlink()
    return Case(SCORE, error=r"sub\.csv: submission file not found")


@case("submissions")
def score_json_exists(tmp: Path) -> Case:
    _scoring(tmp)
    write_text(tmp / "scores.json", '{"mine": true}\n')
    return Case([*SCORE, "--json", "scores.json"], error=r"scores\.json already exists; pass --force")


@case("submissions")
def score_json_is_the_submission(tmp: Path) -> Case:
    _scoring(tmp)
    return Case([*SCORE, "--json", "./sub.csv", "--force"], error=r"--json sub\.csv is the file being scored")


@case("submissions")
def score_json_new(tmp: Path) -> Case:
    _scoring(tmp)
    return Case([*SCORE, "--json", "out/scores.json"], rc=0, out=r"skirt_length_labels", creates=("out/scores.json",))


@case("submissions")
def validate_underscore_number(tmp: Path) -> Case:
    _questions(tmp)
    sub = write_text(tmp / "sub.csv", "".join(
        f"{line[:-2]},{'0.5_0;0.1;0.1;0.1;0.1;0.1' if i == 1 else '0.5;0.1;0.1;0.1;0.1;0.1'}\n"
        for i, line in enumerate((tmp / "test" / "Tests" / "question.csv").read_text().splitlines())))
    assert sub.exists()
    return Case(["validate-submission", "sub.csv", "--questions", "test/Tests/question.csv"], rc=1,
                out=r"1 problem\(s\)\n  sub\.csv:2: '0\.5_0' is not a number")


@case("submissions")
def validate_submission_is_a_folder(tmp: Path) -> Case:
    _questions(tmp)
    (tmp / "sub.csv").mkdir()
    (tmp / "sub.csv" / "keep").write_text("x")
    return Case(["validate-submission", "sub.csv", "--questions", "test/Tests/question.csv"], rc=1,
                out=r"sub\.csv: is a folder, expected a file")

