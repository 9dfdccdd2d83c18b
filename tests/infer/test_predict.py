"""`predict`: fold-averaged test probabilities, TTA on OOF (oof_tta + cv_tta), unreadable test images."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from fashiontag.cli import main
from fashiontag.core.errors import FashiontagError
from fashiontag.core.skips import SkipReport
from fashiontag.fashionai.probs import probs_of
from fashiontag.fashionai.runs import RunError, load_oof
from fashiontag.infer.predict import predict_fold, predict_run
from fashiontag.models.build import load_fold_model
from helpers.models import make_trained_run


@pytest.fixture
def run(tmp_path):
    torch.set_num_threads(1)
    return make_trained_run(tmp_path, n_train=8, n_test=4)


def test_predict_averages_folds_and_runs_tta_on_oof(run):
    predict_run(run["run"], run["test_root"])
    key_dir = run["key_dir"]
    test = pd.read_csv(key_dir / "test.csv")
    questions = pd.read_csv(run["test_root"] / "Tests" / "question.csv", header=None)
    assert list(test["image"]) == list(questions[0])
    probs = probs_of(test)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    # test.csv is the mean of the two folds' TTA predictions.
    cfg, paths = run["cfg"], [str(run["test_root"] / i) for i in test["image"]]
    per_fold = [predict_fold(*load_fold_model(key_dir / f"fold_{k}"), paths, cfg, torch.device("cpu"), SkipReport())
                for k in (0, 1)]
    np.testing.assert_allclose(probs, np.mean(per_fold, axis=0), atol=1e-6)
    assert not np.allclose(per_fold[0], per_fold[1])  # two different models really were averaged
    # TTA on the out-of-fold images: per fold, merged, and its CV.
    for k in (0, 1):
        fold_tta = pd.read_csv(key_dir / f"fold_{k}" / "oof_tta.csv")
        assert set(fold_tta["fold"]) == {k}
    oof_tta = load_oof(key_dir, tta=True)
    assert sorted(oof_tta["image"]) == sorted(load_oof(key_dir)["image"])
    cv = json.loads((key_dir / "cv_tta.json").read_text())
    assert cv["n"] == 8 and {f["fold"] for f in cv["folds"]} == {0, 1}
    record = json.loads((key_dir / "predict.json").read_text())
    assert record["views"][0] == "orig" and len(record["views"]) == 3 and record["folds"] == [0, 1]


def test_unreadable_test_image_stops_or_falls_back(run):
    bad = run["test_root"] / pd.read_csv(run["test_root"] / "Tests" / "question.csv", header=None)[0][1]
    bad.write_bytes(b"not an image")
    with pytest.raises(FashiontagError, match=r"1 test image\(s\) cannot be read.*--fallback uniform"):
        predict_run(run["run"], run["test_root"], overrides=["tta.enabled=false"])
    assert (run["key_dir"] / "bad_test_images.csv").exists()
    assert not (run["key_dir"] / "test.csv").exists()
    predict_run(run["run"], run["test_root"], fallback="uniform", overrides=["tta.enabled=false"])
    probs = probs_of(pd.read_csv(run["key_dir"] / "test.csv"))
    np.testing.assert_allclose(probs[1], np.full(6, 1 / 6))
    assert not np.allclose(probs[0], 1 / 6)


def test_missing_fold_files_are_named(run, capfd):
    (run["key_dir"] / "fold_1" / "model.pth").unlink()
    with pytest.raises(RunError, match=r"fold_1 is missing model.pth \(made by the training step\)") as err:
        predict_run(run["run"], run["test_root"], overrides=["tta.on_oof=false"])
    assert err.value.steps == ["train"]
    # The library names the kind of step; the command line adds the command that runs it.
    assert main(["predict", "--exp", str(run["run"]), "--test", str(run["test_root"]), "--set", "tta.on_oof=false"]) == 2
    assert capfd.readouterr().err.strip().endswith("(made by the training step); run `fashiontag train`")


def test_predict_cli(run):
    rc = main(["predict", "--exp", str(run["run"]), "--test", str(run["test_root"]), "--cat", "skirt_length",
               "--set", "tta.flips_only=true", "--set", "tta.on_oof=false"])
    assert rc == 0
    assert (run["key_dir"] / "test.csv").exists() and not (run["key_dir"] / "oof_tta.csv").exists()
    assert main(["predict", "--exp", str(run["run"]), "--test", str(run["test_root"]), "--cat", "collar"]) == 2
