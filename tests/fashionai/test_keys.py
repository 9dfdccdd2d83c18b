from __future__ import annotations

import pytest

from fashiontag.fashionai.keys import OFFICIAL_KEYS, UnknownKeyError, resolve_key, resolve_keys, short_name


def test_official_value_counts():
    counts = {k: len(v) for k, v in OFFICIAL_KEYS.items()}
    assert counts == {
        "skirt_length_labels": 6, "coat_length_labels": 8, "collar_design_labels": 5,
        "lapel_design_labels": 5, "neck_design_labels": 5, "neckline_design_labels": 10,
        "pant_length_labels": 6, "sleeve_length_labels": 9,
    }
    assert all(values[0] == "Invisible" for values in OFFICIAL_KEYS.values())


def test_short_names_resolve():
    assert resolve_key("skirt_length") == "skirt_length_labels"
    assert resolve_key("skirt_length_labels") == "skirt_length_labels"
    assert short_name("skirt_length_labels") == "skirt_length"
    known = {"garment_type_labels": ["a", "b"], "skirt_length_labels": OFFICIAL_KEYS["skirt_length_labels"]}
    assert resolve_keys("all", known) == list(known)
    assert resolve_keys("garment_type,skirt_length", known) == ["garment_type_labels", "skirt_length_labels"]


def test_unknown_key_lists_choices():
    with pytest.raises(UnknownKeyError, match="known keys: .*skirt_length"):
        resolve_key("skirt_lenght")
