"""import-folders: layout, value order, byte-exact copies, RGB conversion, merging, links, refusals, skips."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from PIL import Image

from fashiontag.cli import main
from fashiontag.core.errors import DataError
from fashiontag.core.files import file_md5
from fashiontag.data.import_folders import ANSWERS_CSV, import_folders
from fashiontag.fashionai.format import load_dataset, read_attributes, read_labels, read_questions

KEY = "garment_type_labels"


def test_labelled_import_layout_and_byte_exact_copies(make_class_folders, write_image, tmp_path):
    src = make_class_folders(tmp_path / "src", {"shirt": 2, "coat": 3})
    write_image(src / "coat" / "cmyk.jpg", seed=9, mode="CMYK")
    write_image(src / "dress" / "gray.png", seed=8, mode="L", fmt="PNG")
    write_image(src / "dress" / "alpha.png", seed=7, mode="RGBA", fmt="PNG")
    (src / "coat" / "notes.txt").write_text("not an image")
    dst = tmp_path / "dst"
    result = import_folders([src], dst, "garment_type")  # short name gets _labels
    assert (result.key, result.n_images, result.n_converted) == (KEY, 8, 3)
    assert read_attributes(dst)[KEY] == ["coat", "dress", "shirt"]  # sorted folder names
    ds = load_dataset(dst)
    assert ds.labels["image"].tolist()[:2] == [f"Images/{KEY}/coat_cmyk.jpg", f"Images/{KEY}/coat_coat0.jpg"]
    assert dict(zip(ds.labels["image"], ds.labels["label"], strict=True))[f"Images/{KEY}/dress_gray.jpg"] == "nyn"
    assert file_md5(dst / "Images" / KEY / "shirt_shirt1.jpg") == file_md5(src / "shirt" / "shirt1.jpg")
    for name in ("coat_cmyk.jpg", "dress_gray.jpg", "dress_alpha.jpg"):
        with Image.open(dst / "Images" / KEY / name) as img:
            assert (img.format, img.mode) == ("JPEG", "RGB"), name


def test_several_sources_merge_classes_with_stable_unique_names(make_class_folders, tmp_path):
    train = make_class_folders(tmp_path / "train", {"coat": 2, "dress": 1}, seed=0)
    valid = make_class_folders(tmp_path / "valid", {"coat": 1, "shirt": 1}, seed=1)  # coat0.jpg again
    dst = tmp_path / "dst"
    assert main(["import-folders", str(train), str(valid), str(dst), "--attr", KEY]) == 0
    labels = read_labels(dst)
    names = labels["image"].tolist()
    assert len(names) == len(set(names)) == 5
    clash = [n for n in names if n.startswith(f"Images/{KEY}/coat_coat0_")]
    assert len(clash) == 1 and file_md5(dst / clash[0]) == file_md5(valid / "coat" / "coat0.jpg")
    assert read_attributes(dst)[KEY] == ["coat", "dress", "shirt"]
    assert main(["import-folders", str(train), str(valid), str(dst), "--attr", KEY, "--force"]) == 0
    assert read_labels(dst)["image"].tolist() == names  # same names on a re-import


def test_refuses_an_existing_dataset_without_force(make_class_folders, tmp_path, capsys):
    src = make_class_folders(tmp_path / "src")
    dst = tmp_path / "dst"
    import_folders([src], dst, KEY)
    before = (dst / "Annotations" / "label.csv").read_text()
    assert main(["import-folders", str(src), str(dst), "--attr", KEY, "--unlabelled"]) == 2
    assert "already holds a dataset; pass --force" in capsys.readouterr().err
    assert (dst / "Annotations" / "label.csv").read_text() == before
    assert not (dst / "Tests").exists()


def test_link_mode_hard_links(make_class_folders, tmp_path):
    src = make_class_folders(tmp_path / "src", {"a": 1, "b": 1})
    import_folders([src], tmp_path / "dst", KEY, link=True)
    assert os.stat(tmp_path / "dst" / "Images" / KEY / "a_a0.jpg").st_ino == os.stat(src / "a" / "a0.jpg").st_ino


def test_unlabelled_flat_folder_and_class_folders(make_class_folders, write_image, tmp_path):
    flat = tmp_path / "flat"
    for i in range(3):
        write_image(flat / f"q{i}.jpg", seed=i)
    # An official key needs no class names; a custom key takes its values from the training import.
    official = tmp_path / "official"
    import_folders([flat], official, "skirt_length", unlabelled=True)
    assert read_questions(official)["key"].unique().tolist() == ["skirt_length_labels"]
    with pytest.raises(DataError, match="--values-from TRAIN_ROOT"):
        import_folders([flat], tmp_path / "custom", KEY, unlabelled=True)
    train = make_class_folders(tmp_path / "train", {"b": 2, "a": 2})
    import_folders([train], tmp_path / "trainroot", KEY)
    import_folders([flat], tmp_path / "custom", KEY, unlabelled=True, values_from=tmp_path / "trainroot")
    assert read_attributes(tmp_path / "custom")[KEY] == ["a", "b"]
    assert len(read_questions(tmp_path / "custom")) == 3

    # Class folders, unlabelled: no class in the names, questions sorted by name, answers kept aside.
    test = tmp_path / "test"
    import_folders([train], test, KEY, unlabelled=True)
    questions = read_questions(test)
    assert questions["image"].tolist() == sorted(f"Images/{KEY}/{n}.jpg" for n in ("a0", "a1", "b0", "b1"))
    answers = pd.read_csv(test / ANSWERS_CSV, header=None, names=["image", "key", "label"])
    assert dict(zip(answers["image"], answers["label"], strict=True))[f"Images/{KEY}/b1.jpg"] == "ny"
    assert not (test / "Annotations" / "label.csv").exists()


def test_labelled_import_needs_class_folders(write_image, tmp_path):
    write_image(tmp_path / "src" / "loose.jpg")
    with pytest.raises(DataError, match="src: 1 images lie directly in the folder"):
        import_folders([tmp_path / "src"], tmp_path / "dst", KEY)
    with pytest.raises(DataError, match="source is not a folder"):
        import_folders([tmp_path / "nope"], tmp_path / "dst", KEY)


@pytest.mark.parametrize("skip", [False, True])
def test_bad_images_stop_or_are_counted(make_class_folders, tmp_path, skip):
    src = make_class_folders(tmp_path / "src")
    (src / "dress" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (src / "shirt" / "empty.jpg").write_bytes(b"")
    dst = tmp_path / "dst"
    if not skip:
        with pytest.raises(DataError, match=r"src/dress/broken.jpg: (not a readable image|corrupt or truncated)"):
            import_folders([src], dst, KEY)
        assert not (dst / "Annotations" / "label.csv").exists()  # nothing half-written
        return
    result = import_folders([src], dst, KEY, skip_bad=True)
    assert (result.n_images, result.n_skipped) == (9, 2)
    report = pd.read_csv(dst / "import_skips.csv")
    assert sorted(os.path.basename(f) for f in report["file"]) == ["broken.jpg", "empty.jpg"]
    assert "0 bytes" in " ".join(report["reason"])
    assert len(read_labels(dst)) == 9
