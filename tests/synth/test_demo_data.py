"""Generated demo data: layout, determinism, exact boxes, honest 'Invisible' and 'm', CLI, learnability."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashiontag.cli import main
from fashiontag.core.errors import FashiontagError
from fashiontag.fashionai.format import parse_label, read_labels, read_questions
from fashiontag.fashionai.keys import OFFICIAL_KEYS
from fashiontag.synth import draw
from fashiontag.synth.demo import (
    DEMO_KEYS,
    SPECS,
    demo_values,
    make_demo_data,
    maybe_neighbours,
    plan_rows,
    render_sample,
    sample_length,
)

SKIRT, SLEEVE = "skirt_length_labels", "sleeve_length_labels"


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "demo"
    make_demo_data(root, seed=5, n_train=48, n_test=16, size=64)
    return root


def test_same_seed_gives_identical_files(tmp_path: Path, demo: Path) -> None:
    make_demo_data(tmp_path / "again", seed=5, n_train=48, n_test=16, size=64)
    make_demo_data(tmp_path / "other", seed=6, n_train=48, n_test=16, size=64)
    same, other = tree_hashes(tmp_path / "again"), tree_hashes(tmp_path / "other")
    assert same == tree_hashes(demo)
    assert len(same) == 2 * (48 + 16) + 5  # images + label, question, answers, truth, demo.json
    assert set(same.values()).isdisjoint(h for k, h in other.items() if k.endswith(".jpg"))


def test_layout_reads_back_with_valid_labels(demo: Path) -> None:
    labels = read_labels(demo / "train")  # raises on any invalid label string
    assert len(labels) == 2 * 48
    assert labels.groupby("key").size().to_dict() == {SKIRT: 48, SLEEVE: 48}
    assert set(labels.loc[labels["key"] == SKIRT, "y"]) == set(range(6))
    sleeve_ys = set(labels.loc[labels["key"] == SLEEVE, "y"])
    assert 0 in sleeve_ys and sleeve_ys <= set(demo_values(SLEEVE)) and max(sleeve_ys) < 9
    maybe = labels[labels["label"].str.contains("m")]
    assert 1 <= len(maybe) <= 0.1 * len(labels)
    for label, y in zip(maybe["label"], maybe["y"], strict=True):  # 'm' sits next to the 'y'
        assert {i for i, c in enumerate(label) if c == "m"} <= {y - 1, y + 1}
    for image in labels["image"]:
        with Image.open(demo / "train" / image) as img:
            assert img.format == "JPEG" and img.mode == "RGB" and img.size == (64, 64)


def test_test_split_answers_match_questions(demo: Path) -> None:
    questions = read_questions(demo / "test")
    answers = pd.read_csv(demo / "test_answers.csv", header=None, names=["image", "key", "label"], dtype=str)
    assert len(questions) == 2 * 16
    assert questions[["image", "key"]].to_numpy().tolist() == answers[["image", "key"]].to_numpy().tolist()
    for image, key, label in answers.itertuples(index=False):
        parse_label(label, len(OFFICIAL_KEYS[key]), demo / "test_answers.csv", 1)
        assert (demo / "test" / image).is_file()
    assert not (demo / "test" / "Annotations").exists()  # the test root carries no labels


def test_truth_lists_every_image_with_boxes(demo: Path) -> None:
    truth = pd.read_csv(demo / "truth.csv")
    labels = read_labels(demo / "train")
    assert len(truth) == 2 * (48 + 16)
    train = truth[truth["split"] == "train"].reset_index(drop=True)
    assert train[["image", "key", "label"]].equals(labels[["image", "key", "label"]])
    assert (train["y"] == labels["y"]).all()
    worn = truth["worn"].astype(bool)
    assert 0.35 < worn.mean() < 0.65 and {"hanger", "flat"} <= set(truth.loc[~worn, "mode"])
    person = truth[["person_x0", "person_y0", "person_x1", "person_y1"]]
    garment = truth[["garment_x0", "garment_y0", "garment_x1", "garment_y1"]].to_numpy()
    assert person[~worn].isna().all().all() and person[worn].notna().all().all()
    assert np.isfinite(garment).all() and (garment >= 0).all() and (garment <= 1).all()
    assert (garment[:, 2] > garment[:, 0]).all() and (garment[:, 3] > garment[:, 1]).all()


def _edge_rows(box: tuple[float, ...], size: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (round(v * size) for v in box)
    return x0, y0, x1, y1


@pytest.mark.parametrize("key", DEMO_KEYS)
def test_boxes_are_tight_around_what_is_drawn(key: str) -> None:
    size, seen = 64, set()
    for i, y in enumerate(demo_values(key) * 2):
        img, info = render_sample(key, y, worn=i % 2 == 0, rng=np.random.default_rng(i), size=size, layers=True)
        seen.add(info["mode"])
        image = np.asarray(img).astype(int)
        diff = np.abs(image - np.asarray(info["background"]).astype(int)).max(axis=-1)
        for part in ("garment", "person", "hanger"):
            mask, box = info["masks"][part], info[f"{part}_box"]
            if box is None:
                assert not mask.any()
                continue
            x0, y0, x1, y1 = _edge_rows(box, size)
            assert 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size
            inside = np.zeros_like(mask)
            inside[y0:y1, x0:x1] = True
            assert not (mask & ~inside).any()  # nothing outside the box
            for edge in (mask[y0], mask[y1 - 1], mask[:, x0], mask[:, x1 - 1]):
                assert edge.any()  # every side of the box touches the part
            # ... and the image really differs from the background on each side of the box
            for edge in (diff[y0, x0:x1], diff[y1 - 1, x0:x1], diff[y0:y1, x0], diff[y0:y1, x1 - 1]):
                assert edge.max() > 8
        assert (info["person_box"] is not None) == info["worn"]
        if info["worn"]:  # outside the person nothing but background was drawn
            x0, y0, x1, y1 = _edge_rows(info["person_box"], size)
            outside = np.ones((size, size), bool)
            outside[y0:y1, x0:x1] = False
            assert (diff[outside] == 0).all()
        assert (info["hanger_box"] is not None) == (info["mode"] == "hanger")
    assert seen == {"worn", "hanger", "flat"}


@pytest.mark.parametrize(("key", "short", "long"), [(SKIRT, 0.36, 1.0), (SLEEVE, 0.24, 1.4)])
def test_invisible_hides_the_length(key: str, short: float, long: float) -> None:
    """'Invisible' images do not depend on the hidden length at all, and the crop cuts the garment."""
    for i in range(12):
        a, info = render_sample(key, 0, i % 2 == 0, np.random.default_rng(i), 64, length=short)
        b, _ = render_sample(key, 0, i % 2 == 0, np.random.default_rng(i), 64, length=long)
        assert np.array_equal(np.asarray(a), np.asarray(b))
        x0, _, x1, y1 = info["garment_box"]
        assert y1 == 1.0 if key == SKIRT else (x0 == 0.0 and x1 == 1.0)


@pytest.mark.parametrize("key", DEMO_KEYS)
def test_visible_lengths_keep_the_evidence_in_frame(key: str) -> None:
    for i, y in enumerate(demo_values(key)[1:] * 3):
        _, info = render_sample(key, y, i % 2 == 0, np.random.default_rng(100 + i), 64)
        x0, _, x1, y1 = info["garment_box"]
        assert y1 < 1.0 and x0 > 0.0 and x1 < 1.0


def test_lengths_fall_in_their_bands_and_maybe_rows_are_borderline() -> None:
    rng = np.random.default_rng(0)
    for key, spec in SPECS.items():
        for y, (lo, hi) in spec.bands.items():
            length, maybe = sample_length(key, y, rng)
            assert lo <= length <= hi and maybe == ()
            if not maybe_neighbours(key, y):  # sleeveless, extra long (Long Sleeves is not drawn)
                assert sample_length(key, y, rng, maybe=True)[1] == ()
                continue
            for _ in range(5):
                length, (nb,) = sample_length(key, y, rng, maybe=True)
                assert abs(nb - y) == 1 and nb in spec.bands
                nlo, nhi = spec.bands[nb]
                # in the gap, on y's side of its middle
                if nb > y:
                    assert hi < length < (hi + nlo) / 2
                else:
                    assert (nhi + lo) / 2 < length < lo


def test_plan_rows_balances_values_worn_and_maybe() -> None:
    rows = plan_rows(SKIRT, 120, np.random.default_rng(1))
    ys = [y for y, _, _ in rows]
    assert {v: ys.count(v) for v in range(6)} == dict.fromkeys(range(6), 20)
    assert sum(w for _, w, _ in rows) == 60
    maybe = [y for y, _, m in rows if m]
    assert len(maybe) == round(0.03 * 120) and 0 not in maybe


def test_unknown_key_or_value_is_a_clear_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(FashiontagError, match="no demo generator for 'collar_design_labels'"):
        render_sample("collar_design_labels", 1, True, rng)
    with pytest.raises(FashiontagError, match="value 7 of sleeve_length_labels is not generated"):
        render_sample(SLEEVE, 7, True, rng)
    with pytest.raises(FashiontagError, match="size >= 32"):
        make_demo_data(tmp_path / "x", size=16)


def test_cli_writes_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dst = tmp_path / "demo"
    args = ["make-demo-data", str(dst), "--n-train", "6", "--n-test", "3", "--size", "48", "--keys", "skirt_length"]
    assert main(args) == 0
    before = tree_hashes(dst)
    assert len(read_labels(dst / "train")) == 6 and len(read_questions(dst / "test")) == 3
    (dst / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(args + ["--seed", "1"]) == 2  # the CLI logs the error as one line (to stderr)
    assert "not empty; pass --force" in capsys.readouterr().err
    assert tree_hashes(dst) == {**before, "notes.txt": hashlib.md5(b"mine").hexdigest()}
    assert main(args + ["--seed", "1", "--force"]) == 0
    after = tree_hashes(dst)
    assert after["notes.txt"] == hashlib.md5(b"mine").hexdigest()  # only generated outputs are replaced
    assert after["train/Annotations/label.csv"] != before["train/Annotations/label.csv"]
    assert not [p for p in dst.iterdir() if p.name.startswith(".")]  # no build folder left behind


def test_skirt_length_is_learnable_from_small_grayscale_pixels() -> None:
    """Cheap learnability probe: an RBF SVM on 32x32 grayscale gradients beats chance (1/6) by far."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    def features(split: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for i, (y, worn, _) in enumerate(plan_rows(SKIRT, n, np.random.default_rng([split]))):
            img, _ = render_sample(SKIRT, y, worn, np.random.default_rng([split, 1, i]), 48, maybe=False)
            g = np.asarray(img.convert("L").resize((32, 32), Image.BILINEAR), np.float32) / 255
            xs.append(np.concatenate([np.abs(np.diff(g, axis=0)).ravel(), np.abs(np.diff(g, axis=1)).ravel()]))
            ys.append(y)
        return np.array(xs), np.array(ys)

    (x_train, y_train), (x_test, y_test) = features(0, 480), features(1, 240)
    clf = make_pipeline(StandardScaler(), SVC(C=3.0)).fit(x_train, y_train)
    accuracy = float((clf.predict(x_test) == y_test).mean())
    assert accuracy > 2.2 / 6, accuracy


def test_drawing_primitives_return_tight_canvas_boxes() -> None:
    rng = np.random.default_rng(3)
    canvas = draw.Canvas(200, 200)
    body = draw.Body.random(rng).fit((50, 20, 150, 180))
    person = draw.draw_person(canvas, body, rng)
    assert person is not None and person[1] >= 20 and person[3] <= 180 and abs(person[3] - 180) <= 2
    skirt = draw.draw_skirt(canvas, body, 0.4, rng)  # knee length: hem between hips and ankles
    assert skirt is not None and 20 + 0.5 * 160 < skirt[3] < 20 + draw.ANKLE_V * 160
    parts = np.asarray(canvas.parts)
    rows, cols = np.nonzero(parts == draw.PART_GARMENT)
    assert skirt == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    assert canvas.bbox(draw.PART_PERSON, draw.PART_GARMENT)[3] == person[3]  # feet below the skirt
    flat = draw.Canvas(200, 200)
    top = draw.draw_top(flat, body, 0.0, rng)
    hanger = draw.draw_hanger(flat, body, rng, at="shoulders")
    assert top is not None and hanger is not None and hanger[1] < top[1]  # the hook rises above the top
    assert flat.bbox(draw.PART_PERSON) is None
