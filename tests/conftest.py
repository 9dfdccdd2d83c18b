"""Shared fixtures: tiny generated FashionAI roots, class folders and images (CPU, a few KB each).

Factories are exposed as fixtures (`make_fashionai_root`, `make_class_folders`, `write_image`) so tests
never import this module; `fashionai_root` is a ready-made training root.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashiontag.fashionai.format import label_string, write_attributes, write_labels, write_questions
from fashiontag.fashionai.keys import OFFICIAL_KEYS

# A custom key (needs attributes.csv) next to an official one with more values.
DEFAULT_KEYS: dict[str, list[str]] = {
    "skirt_length_labels": OFFICIAL_KEYS["skirt_length_labels"],
    "garment_type_labels": ["coat", "dress", "shirt"],
}


def save_image(path: Path, seed: int = 0, size: tuple[int, int] = (16, 12), mode: str = "RGB",
               fmt: str = "JPEG") -> Path:
    """A small random image; different seeds give different bytes (distinct md5)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")
    if mode == "RGBA":
        img = img.convert("RGBA")
        img.putalpha(Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8), "L"))
    elif mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def build_fashionai_root(
    root: Path,
    keys: dict[str, list[str]] | None = None,
    per_value: int = 3,
    labelled: bool = True,
    maybe_every: int = 0,
    seed: int = 0,
) -> Path:
    """A FashionAI root: per_value images for every value of every key, Annotations/label.csv
    (or Tests/question.csv when not labelled) and attributes.csv for non-official keys.

    `maybe_every=k` marks the next value 'm' on every k-th row, as real labels sometimes do.
    """
    keys = DEFAULT_KEYS if keys is None else keys
    rows, n_img = [], 0
    for key, values in keys.items():
        for v in range(len(values)):
            for i in range(per_value):
                image = f"Images/{key}/{key[:5]}_{v}_{i}.jpg"
                save_image(root / image, seed=seed * 100_000 + n_img)
                maybe = ((v + 1) % len(values),) if maybe_every and n_img % maybe_every == 0 else ()
                rows.append((image, key, label_string(v, len(values), maybe)))
                n_img += 1
    table = pd.DataFrame(rows, columns=["image", "key", "label"])
    write_attributes(root, keys)
    if labelled:
        write_labels(root, table)
    else:
        write_questions(root, table)
    return root


def build_class_folders(src: Path, classes: dict[str, int] | None = None, seed: int = 0) -> Path:
    """SRC/<class>/<class><i>.jpg with the given number of images per class."""
    classes = {"coat": 3, "dress": 3, "shirt": 3} if classes is None else classes
    n = 0
    for cls, count in classes.items():
        for i in range(count):
            save_image(src / cls / f"{cls}{i}.jpg", seed=seed * 100_000 + n)
            n += 1
    return src


@pytest.fixture
def write_image() -> Callable[..., Path]:
    return save_image


@pytest.fixture
def make_fashionai_root() -> Callable[..., Path]:
    return build_fashionai_root


@pytest.fixture
def make_class_folders() -> Callable[..., Path]:
    return build_class_folders


@pytest.fixture
def fashionai_root(tmp_path: Path) -> Path:
    """demo/train: skirt_length (6 values) and garment_type (3 values, custom), 3 images per value."""
    return build_fashionai_root(tmp_path / "demo" / "train")


@pytest.fixture(autouse=True)
def _restore_root_logger():
    """The CLI's setup_logging replaces root handlers (bound to the test's captured stderr); put them back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
