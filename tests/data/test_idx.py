"""The idx reader (header, sizes, counts, corrupt files) and the Fashion-MNIST import into the FashionAI layout."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashiontag.cli import main
from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.data.idx import CLASSES, KEY, import_idx, load_split, read_idx
from fashiontag.fashionai.format import load_dataset, read_attributes, read_questions
from helpers.fmnist_idx import write_idx


def fake_fmnist(folder: Path, n_train: int = 30, n_test: int = 10, seed: int = 0, gz: bool = True) -> Path:
    """The four official file names with random 28x28 images and labels cycling through the 10 classes."""
    rng = np.random.default_rng(seed)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", (np.arange(n) % 10).astype(np.uint8))
    return folder


def test_read_idx_round_trip_raw_and_gz(tmp_path: Path) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        got = read_idx(write_idx(tmp_path / name, arr))
        assert got.shape == (2, 3, 4) and got.dtype == np.uint8 and (got == arr).all()
    ints = np.array([1, -2, 70000], dtype=np.int32)
    assert read_idx(write_idx(tmp_path / "i.idx", ints)).tolist() == [1, -2, 70000]  # big-endian decoded


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    good = write_idx(tmp_path / "g.idx", np.zeros((3, 28, 28), dtype=np.uint8)).read_bytes()
    cases = {
        "magic.idx": (b"\x12\x34" + good[2:], "bad magic number 1234"),
        "dtype.idx": (good[:2] + b"\x07" + good[3:], "bad magic number"),
        "short.idx": (good[:3], "too short"),
        "header.idx": (good[:9], "truncated idx header"),
        "data.idx": (good[:-5], r"idx data truncated: dimensions \(3, 28, 28\) need 2352 bytes, found 2347"),
        "extra.idx": (good + b"\0", "has trailing bytes"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=message) as info:
            read_idx(tmp_path / name)
        assert info.value.path.endswith(name)
    packed = gzip.compress(good)
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match="cut.gz: cannot decompress"):
        read_idx(tmp_path / "cut.gz")
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "nope.gz")


def test_load_split_cross_checks(tmp_path: Path) -> None:
    src = fake_fmnist(tmp_path, gz=False)  # unpacked files are found too
    split = load_split(src, "train")
    assert split.images.shape == (30, 28, 28) and split.labels.tolist()[:11] == [*range(10), 0]
    write_idx(src / "train-labels-idx1-ubyte", np.zeros(29, dtype=np.uint8))
    with pytest.raises(DataError, match="29 labels for 30 images"):
        load_split(src, "train")
    write_idx(src / "train-labels-idx1-ubyte", np.full(30, 10, dtype=np.uint8))
    with pytest.raises(DataError, match="label 10 at item 0 is outside 0..9"):
        load_split(src, "train")
    write_idx(src / "t10k-images-idx3-ubyte", np.zeros((10, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match=r"shape \(n, 28, 28\)"):
        load_split(src, "test")


def test_missing_files_say_how_to_get_them(tmp_path: Path) -> None:
    for folder in (tmp_path / "absent", tmp_path):
        with pytest.raises(FashiontagError) as info:
            load_split(folder, "train")
        text = str(info.value)
        assert "apt-get install dataset-fashion-mnist" in text and "zalandoresearch/fashion-mnist" in text


def test_import_writes_the_fashionai_layout(tmp_path: Path) -> None:
    src = fake_fmnist(tmp_path / "idx")
    dst = tmp_path / "fm"
    summary = import_idx(src, dst, limit=20)
    assert summary["train"]["n"] == 20 and summary["test"]["n"] == 10  # test_limit defaults to limit
    assert summary["train"]["per_class"] == [2] * 10
    ds = load_dataset(dst / "train")
    assert ds.attributes[KEY] == CLASSES and ds.keys == [KEY]
    assert list(ds.labels["y"][:12]) == [*range(10), 0, 1]
    # pixels survive the round trip exactly (PNG, grayscale)
    first = np.asarray(Image.open(dst / "train" / ds.labels["image"][0]))
    assert (first == load_split(src, "train").images[0]).all()
    questions = read_questions(dst / "test", read_attributes(dst / "test"))
    lines = (dst / "test_answers.csv").read_text().splitlines()
    assert len(questions) == len(lines) == 10
    assert lines[3] == f"{questions['image'][3]},{KEY},nnnynnnnnn"
    with pytest.raises(FashiontagError, match="already exists; pass --force"):
        import_idx(src, dst)
    assert import_idx(src, dst, force=True)["train"]["n"] == 30


def test_cli_import_idx(tmp_path: Path, capsys) -> None:
    src = fake_fmnist(tmp_path / "idx")
    assert main(["import-idx", str(src), str(tmp_path / "fm"), "--limit", "10", "--test-limit", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["train"]["n"], out["test"]["n"]) == (10, 5)
    assert main(["import-idx", str(tmp_path / "nothing"), str(tmp_path / "fm2")]) == 2


@pytest.mark.shared
def test_real_fashion_mnist_headers() -> None:
    """The Debian package's files, when installed: official counts and label balance."""
    src = Path("/usr/share/datasets/fashion-mnist")
    if not (src / "t10k-labels-idx1-ubyte.gz").exists():
        pytest.skip("dataset-fashion-mnist is not installed")
    test = load_split(src, "test")
    assert test.images.shape == (10000, 28, 28)
    assert np.bincount(test.labels).tolist() == [1000] * 10
