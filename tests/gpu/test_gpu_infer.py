"""On a GPU, from the tier's trained fold: predict a test set with TTA, extract stack features, tag a folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from helpers.gpu import DEVICE, KEY, gpu_tier

pytestmark = gpu_tier


def test_predict_with_tta(gpu_world):
    from fashiontag.cli import main

    assert main(["predict", "--exp", str(gpu_world.run), "--test", str(gpu_world.test)]) == 0
    test = pd.read_csv(gpu_world.run / KEY / "test.csv")
    questions = pd.read_csv(gpu_world.test / "Tests" / "question.csv", header=None)
    assert len(test) == len(questions)
    record = json.loads((gpu_world.run / KEY / "predict.json").read_text())
    assert record  # written last, after test.csv and the TTA out-of-fold file
    assert (gpu_world.fold / "oof_tta.csv").exists()


def test_stack_features_on_the_gpu(gpu_world, tmp_path):
    import torch

    from fashiontag.core.config import load_config
    from fashiontag.core.skips import SkipReport
    from fashiontag.models.build import load_fold_model
    from fashiontag.stack.features import fold_features

    device = torch.device(DEVICE)
    model, pre = load_fold_model(gpu_world.fold, device)
    images = sorted(str(p) for p in (gpu_world.test / "Images").rglob("*.jpg"))
    cfg = load_config(str(gpu_world.fold / "config.yaml"))
    feats = fold_features(model, pre, gpu_world.fold, images, cfg, device, tmp_path / "f.npy", SkipReport(True))
    assert feats.shape[0] == len(images) and np.isfinite(feats).all()
    assert next(model.parameters()).device.type == DEVICE


def test_tag_a_folder_with_tta(gpu_world, tmp_path):
    from fashiontag.cli import main

    out = tmp_path / "tags.json"
    code = main(["tag", str(gpu_world.test / "Images"), "--run", str(gpu_world.run), "--tta", "--format", "json",
                 "--out", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())
    assert len(rows) >= len(list((gpu_world.test / "Images").rglob("*.jpg")))
