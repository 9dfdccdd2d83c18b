"""worn.mode end to end: train, predict and submit on generated demo data in every mode (CPU, tiny CNN).

The split file is written from the generator's truth (worn, person box), so these tests check the
training/prediction plumbing of each mode; detection itself is tested in test_split.py / _tiny.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fashiontag.core.config import load_config
from fashiontag.core.errors import ConfigError
from fashiontag.core.files import atomic_write_csv
from fashiontag.data.cache import build_cache
from fashiontag.data.worn_file import SPLIT_COLUMNS, split_path
from fashiontag.fashionai.format import read_questions
from fashiontag.fashionai.runs import list_keys, load_oof, load_test
from fashiontag.fashionai.submit_run import submit_run
from fashiontag.infer.tag import tag_images
from fashiontag.recipes import separate
from fashiontag.report.groups import group_scores
from fashiontag.stack.runner import stack_run
from fashiontag.synth.demo import make_demo_data
from fashiontag.train import runner as train_runner

KEY = "skirt_length_labels"


def split_from_truth(demo: Path, cfg: dict) -> None:
    truth = pd.read_csv(demo / "truth.csv")
    for part in ("train", "test"):
        t = truth[truth["split"] == part]
        worn = t["worn"].astype(bool)
        df = pd.DataFrame({"image": t["image"], "worn": worn, "persons": worn.astype(int),
                           "x0": t["person_x0"], "y0": t["person_y0"], "x1": t["person_x1"], "y1": t["person_y1"],
                           "conf": worn.astype(float), "detector": "truth", "weights_md5": "-", "imgsz": 0,
                           "threshold": 0.4})
        atomic_write_csv(split_path(demo / part, cfg), df[SPLIT_COLUMNS])


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo_data(tmp_path_factory.mktemp("demo") / "demo", n_train=16, n_test=6, size=32,
                          keys=[KEY]).root


def config(tmp: Path, demo: Path, mode: str) -> dict:
    cfg = load_config(None, [
        f"worn.mode={mode}", f"worn.out_dir={tmp / 'split'}", f"data.root={demo / 'train'}",
        f"runs_dir={tmp / 'runs'}", f"cache.dir={tmp / 'cache'}", f"data.folds_dir={tmp / 'folds'}",
        "data.n_folds=2", "model.backbone=test_efficientnet", "model.pretrained=false", "model.head_hidden=[8]",
        "train.stages=[32]", "train.frozen_epochs=0", "train.unfrozen_epochs=1", "train.lr=0.01",
        "train.lr_find=false", "train.batch_size=8", "train.num_workers=0", "train.device=cpu",
        "tta.n_views=2", "tta.n_random=1", f"exp=m_{mode}",
    ])
    split_from_truth(demo, cfg)
    return cfg


def run_mode(tmp: Path, demo: Path, mode: str) -> Path:
    torch.set_num_threads(1)
    cfg = config(tmp, demo, mode)
    separate.train(demo / "train", "all", "all", cfg)
    run = tmp / "runs" / f"m_{mode}"
    separate.predict(run, demo / "test")
    submit_run(run, demo / "test", tmp / f"{mode}.csv")
    return run


def check_run(run: Path, demo: Path, tmp: Path, mode: str) -> None:
    assert list_keys(run) == [KEY]  # separate's groups/ folder is not mistaken for a key
    oof = load_oof(run / KEY)
    labels = pd.read_csv(demo / "train" / "Annotations" / "label.csv", header=None)
    assert sorted(oof["image"]) == sorted(labels[0]) and set(oof["fold"]) == {0, 1}
    test = load_test(run / KEY)
    questions = read_questions(demo / "test")
    assert test["image"].tolist() == questions["image"].tolist()  # question order kept
    sub = pd.read_csv(tmp / f"{mode}.csv", header=None)
    assert sub[0].tolist() == questions["image"].tolist()


def test_separate_mode_end_to_end(tmp_path, demo):
    run = run_mode(tmp_path, demo, "separate")
    check_run(run, demo, tmp_path, "separate")
    truth = pd.read_csv(demo / "truth.csv").set_index("image")["worn"]
    for group, worn in (("worn", True), ("hanger", False)):
        sub = load_oof(run / "groups" / group / KEY)
        assert len(sub) and (truth[sub["image"]] == worn).all()  # each model saw only its group
    # The merged OOF keeps each group model's probabilities for its own images.
    merged = load_oof(run / KEY).set_index("image")
    part = load_oof(run / "groups" / "worn" / KEY).set_index("image")
    np.testing.assert_allclose(merged.loc[part.index, "p_0"], part["p_0"])
    cv = pd.read_json(run / KEY / "cv.json", typ="series")
    assert set(cv["groups"]) == {"worn", "hanger"}
    with pytest.raises(ConfigError, match="worn.mode=separate"):  # tag cannot merge groups: says so
        tag_images([demo / "test" / "Images"], run)


def test_crop_mode_trains_on_person_boxes(tmp_path, demo, monkeypatch):
    seen = []
    real = train_runner.build_cache

    def spy(paths, size, cache_dir, crops=None, **kw):
        seen.append(crops)
        return real(paths, size, cache_dir, crops, **kw)

    monkeypatch.setattr(train_runner, "build_cache", spy)
    run = run_mode(tmp_path, demo, "crop")
    check_run(run, demo, tmp_path, "crop")
    crops = seen[0]
    truth = pd.read_csv(demo / "truth.csv")
    worn = truth[truth["split"] == "train"]["worn"].to_numpy(dtype=bool)
    assert sum(c is not None for c in crops) == worn.sum()  # worn: a person box; hanger: uncropped
    assert all(0.0 <= v <= 1.0 for c in crops if c for v in c)
    with pytest.raises(ConfigError, match="worn.mode=crop"):  # the stack would read uncropped images
        stack_run(run, demo / "test")


def test_all_modes_comparable_on_the_same_folds(tmp_path, demo):
    runs = [run_mode(tmp_path, demo, m) for m in ("none", "combined", "crop")]
    runs.append(run_mode(tmp_path, demo, "separate"))
    for run in runs:
        check_run(run, demo, tmp_path, run.name[2:])
    folds = [load_oof(r / KEY).set_index("image")["fold"].sort_index() for r in runs]
    assert all(f.equals(folds[0]) for f in folds)
    scores = group_scores(runs)
    assert set(scores["mode"]) == {"none", "combined", "crop", "separate"}
    n = scores.pivot_table(index="run", columns="group", values="n")
    assert (n["worn"] + n["hanger"] == n["all"]).all()
    # combined only adds metadata: its model is the plain one
    a, b = (load_oof(r / KEY).sort_values("image") for r in runs[:2])
    np.testing.assert_allclose(a["p_0"], b["p_0"])


def test_build_cache_crops_differ(tmp_path, demo):
    """Guard for the crop hook: the same images with boxes give different cached pixels."""
    paths = sorted((demo / "train" / "Images" / KEY).glob("*.jpg"))[:2]
    plain = build_cache(paths, 32, tmp_path / "c")
    cropped = build_cache(paths, 32, tmp_path / "c", crops=[(0.0, 0.0, 0.5, 0.5), None])
    assert not np.array_equal(plain.row(0), cropped.row(0))
    assert np.array_equal(plain.row(1), cropped.row(1))
