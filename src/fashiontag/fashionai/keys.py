"""The FashionAI attribute keys, their value names, and short-name resolution (`skirt_length` -> key)."""

from __future__ import annotations

from pathlib import Path

from fashiontag.core.errors import FashiontagError
from fashiontag.core.names import check_name

# Value order matters: the label string and the submission's probabilities follow it.
OFFICIAL_KEYS: dict[str, list[str]] = {
    "skirt_length_labels": [
        "Invisible", "Short Length", "Knee Length", "Midi Length", "Ankle Length", "Floor Length",
    ],
    "coat_length_labels": [
        "Invisible", "High Waist Length", "Regular Length", "Long Length", "Micro Length",
        "Knee Length", "Midi Length", "Ankle&Floor Length",
    ],
    "collar_design_labels": ["Invisible", "Shirt Collar", "Peter Pan", "Puritan Collar", "Rib Collar"],
    "lapel_design_labels": ["Invisible", "Notched", "Collarless", "Shawl Collar", "Plus Size Shawl"],
    "neck_design_labels": [
        "Invisible", "Turtle Neck", "Ruffle Semi-High Collar", "Low Turtle Neck", "Draped Collar",
    ],
    "neckline_design_labels": [
        "Invisible", "Strapless Neck", "Deep V Neckline", "Straight Neck", "V Neckline",
        "Square Neckline", "Off Shoulder", "Round Neckline", "Sweat Heart Neck", "One Shoulder Neckline",
    ],
    "pant_length_labels": [
        "Invisible", "Short Pant", "Mid Length", "3/4 Length", "Cropped Pant", "Full Length",
    ],
    "sleeve_length_labels": [
        "Invisible", "Sleeveless", "Cup Sleeves", "Short Sleeves", "Elbow Sleeves", "3/4 Sleeves",
        "Wrist Length", "Long Sleeves", "Extra Long Sleeves",
    ],
}

SUFFIX = "_labels"


class UnknownKeyError(FashiontagError):
    pass


def short_name(key: str) -> str:
    """`skirt_length_labels` -> `skirt_length` (used in folder names and on the command line)."""
    return key[: -len(SUFFIX)] if key.endswith(SUFFIX) else key


def resolve_key(name: str, known: dict[str, list[str]] | None = None) -> str:
    """Map a command-line name to a full key.

    `known` is the key -> values table of a dataset (official keys plus attributes.csv); a name
    matches a key exactly or as its short form.
    """
    table = OFFICIAL_KEYS if known is None else known
    if name in table:
        return name
    if name + SUFFIX in table:
        return name + SUFFIX
    choices = ", ".join(sorted(short_name(k) for k in table)) or "(none)"
    raise UnknownKeyError(f"unknown attribute key {name!r}; known keys: {choices}")


def resolve_keys(spec: str | list[str] | None, known: dict[str, list[str]]) -> list[str]:
    """`all`, None, a comma list or a list of names -> full keys, in the dataset's order."""
    if spec is None or spec == "all" or spec == ["all"]:
        return list(known)
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    return [resolve_key(n.strip(), known) for n in names if n.strip()]


def check_key(key: str, path: str | Path | None = None, line: int | None = None) -> str:
    """A key becomes runs/<exp>/<key>/, Images/<key>/ and cache names: it must be a safe file name
    (core.names); a bad one is a DataError naming `path`:`line` (the file it was read from)."""
    return check_name(key, "attribute key", path, line)
