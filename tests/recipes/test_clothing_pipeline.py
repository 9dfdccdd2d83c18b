"""`fashiontag clothing` end to end on tiny class folders: import, folds, partial fine-tuning on cached
activations, an ensemble member, TTA, the blend, report, and a validated submission for an unlabelled folder."""

from __future__ import annotations

import json

import pandas as pd

from fashiontag.cli import main
from fashiontag.fashionai.format import read_attributes
from fashiontag.fashionai.submission import read_submission
from helpers.training import tiny_overrides


def test_clothing_pipeline_with_an_unlabelled_folder(tmp_path, make_class_folders, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = make_class_folders(tmp_path / "src", {"coat": 6, "dress": 6, "shirt": 6})
    photos = make_class_folders(tmp_path / "new_photos", {"coat": 2, "dress": 1}, seed=7)
    # The CPU profile's recipe (partial fine-tuning on cached activations, one ensemble member) made tiny.
    sets = tiny_overrides(tmp_path, "train.trainable_stages=2", "train.frozen_epochs=0", "train.unfrozen_epochs=1",
                          "cache.size=32", "ensemble.members=[clothing_cpu_lite1]",
                          "exp=cloth")
    args = ["clothing", str(src), "--workdir", "data/cloth", "--unlabelled", str(photos), "--out", "sub.csv",
            "--report", "reports/cloth.md"] + [a for s in sets for a in ("--set", s)]
    assert main(args) == 0

    runs = tmp_path / "runs"
    key = "garment_type_labels"
    for run in ("cloth", "cloth_lite1", "cloth_blend"):
        assert (runs / run / key / "oof.csv").is_file(), run
        assert json.loads((runs / run / key / "cv.json").read_text())["n"] == 18
    assert (runs / "cloth" / key / "oof_tta.csv").is_file()
    report = (tmp_path / "reports" / "cloth.md").read_text()
    assert "cloth_lite1" in report and "cloth_blend" in report and not (runs / "cloth_xgb").exists()

    sub = read_submission(tmp_path / "sub.csv", read_attributes(tmp_path / "data" / "cloth" / "test"))
    questions = pd.read_csv(tmp_path / "data" / "cloth" / "test" / "Tests" / "question.csv", header=None)
    assert len(sub) == len(questions) == 3
    assert set(sub["key"]) == {key}

    # A second call reuses every finished step (the folds, the features, the trained folds).
    mtime = (runs / "cloth" / key / "fold_0" / "model.pth").stat().st_mtime
    assert main(args) == 0
    assert (runs / "cloth" / key / "fold_0" / "model.pth").stat().st_mtime == mtime
