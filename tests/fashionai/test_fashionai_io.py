"""The FashionAI layout: label.csv, question.csv and attributes.csv read/write round trips."""

from __future__ import annotations

import pandas as pd
import pytest

from fashiontag.core.errors import DataError
from fashiontag.fashionai.format import (
    ATTRIBUTES_CSV,
    LABEL_CSV,
    QUESTION_CSV,
    label_string,
    load_dataset,
    parse_label,
    read_attributes,
    read_labels,
    read_questions,
    write_attributes,
    write_labels,
    write_questions,
)
from fashiontag.fashionai.keys import OFFICIAL_KEYS, UnknownKeyError


def test_label_string_and_parse_label_agree(tmp_path):
    assert label_string(2, 5) == "nnynn"
    assert label_string(2, 5, maybe=(3,)) == "nnymn"
    for y in range(6):
        assert parse_label(label_string(y, 6, maybe=((y + 1) % 6,)), 6, tmp_path, 1) == y


def test_labels_round_trip_with_lines(tmp_path):
    table = pd.DataFrame({
        "image": ["Images/skirt_length_labels/a.jpg", "Images/collar_design_labels/b.jpg"],
        "key": ["skirt_length_labels", "collar_design_labels"],
        "label": ["nnnnny", "nymnn"],
    })
    path = write_labels(tmp_path, table)
    assert path == tmp_path / LABEL_CSV
    assert path.read_text() == (
        "Images/skirt_length_labels/a.jpg,skirt_length_labels,nnnnny\n"
        "Images/collar_design_labels/b.jpg,collar_design_labels,nymnn\n"
    )
    # A blank line is skipped but line numbers keep counting from the file.
    path.write_text(path.read_text().replace("\n", "\n\n", 1))
    labels = read_labels(tmp_path)
    assert labels["y"].tolist() == [5, 1] and labels["line"].tolist() == [1, 3]
    assert labels["label"].tolist() == ["nnnnny", "nymnn"]
    elsewhere = tmp_path / "answers.csv"
    elsewhere.write_text(path.read_text())
    assert read_labels(tmp_path / "nowhere", OFFICIAL_KEYS, csv_path=elsewhere)["y"].tolist() == [5, 1]


def test_questions_keep_file_order(tmp_path):
    q = pd.DataFrame({"image": [f"Images/neck_design_labels/{c}.jpg" for c in "cab"], "key": "neck_design_labels"})
    write_questions(tmp_path, q)
    assert (tmp_path / QUESTION_CSV).read_text().splitlines()[0] == "Images/neck_design_labels/c.jpg,neck_design_labels,?"
    back = read_questions(tmp_path)
    assert back["image"].tolist() == q["image"].tolist() and back["line"].tolist() == [1, 2, 3]
    (tmp_path / QUESTION_CSV).write_text("Images/x.jpg,neck_design_labels,nnnny\n")
    with pytest.raises(DataError, match=r"question.csv:1: third column must be '\?'"):
        read_questions(tmp_path)


def test_attributes_only_store_custom_keys(tmp_path):
    table = {"skirt_length_labels": OFFICIAL_KEYS["skirt_length_labels"], "fabric_labels": ["silk", "wool"]}
    write_attributes(tmp_path, table)
    text = (tmp_path / ATTRIBUTES_CSV).read_text()
    assert text == "key,index,value\nfabric_labels,0,silk\nfabric_labels,1,wool\n"
    attrs = read_attributes(tmp_path)
    assert attrs["fabric_labels"] == ["silk", "wool"] and attrs["skirt_length_labels"] == table["skirt_length_labels"]
    (tmp_path / ATTRIBUTES_CSV).write_text("key,index,value\nfabric_labels,0,silk\nfabric_labels,2,wool\n")
    with pytest.raises(DataError, match=r"attributes.csv: indices for fabric_labels must be 0..1"):
        read_attributes(tmp_path)
    (tmp_path / ATTRIBUTES_CSV).write_text("key,index,value\nfabric_labels,one,silk\n")
    with pytest.raises(DataError, match=r"attributes.csv:2: index 'one' is not an integer"):
        read_attributes(tmp_path)


def test_dataset_from_generated_root(fashionai_root):
    ds = load_dataset(fashionai_root)
    assert ds.name == "train"
    assert ds.keys == ["skirt_length_labels", "garment_type_labels"]
    assert ds.attributes["garment_type_labels"] == ["coat", "dress", "shirt"]
    assert len(ds.for_key("garment_type_labels")) == 9 and len(ds.labels) == 27
    assert ds.select_keys("garment_type") == ["garment_type_labels"]
    with pytest.raises(UnknownKeyError, match="known keys: garment_type, skirt_length"):
        ds.select_keys("collar_design")
    assert all(ds.image_path(img).is_file() for img in ds.labels["image"])


def test_missing_label_csv_is_explained(tmp_path):
    with pytest.raises(DataError, match="no label.csv: is this a FashionAI training root"):
        load_dataset(tmp_path)
