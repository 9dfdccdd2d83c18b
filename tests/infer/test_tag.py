"""`tag`: top values per image and key (fold-averaged), the three output formats, unreadable images."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

from fashiontag.cli import main
from fashiontag.core.errors import FashiontagError
from fashiontag.core.skips import SkipReport
from fashiontag.infer.predict import predict_fold
from fashiontag.infer.tag import format_tags, tag_images, top_values
from fashiontag.models.build import load_fold_model
from helpers.models import make_trained_run


@pytest.fixture
def run(tmp_path):
    torch.set_num_threads(1)
    return make_trained_run(tmp_path, n_values=4, n_train=4, n_test=3)


def test_tags_are_fold_averaged_top_values(run):
    folder = run["test_root"] / "Images"
    df, skips = tag_images([folder], run["run"], top=2, progress="log")
    images = sorted(str(p) for p in folder.rglob("*.png"))
    assert len(skips) == 0
    assert list(df["image"].unique()) == images and len(df) == 3 * 2
    assert list(df["rank"]) == [1, 2] * 3
    cfg = {**run["cfg"], "tta": {**run["cfg"]["tta"], "enabled": False}}
    probs = np.mean([predict_fold(*load_fold_model(run["key_dir"] / f"fold_{k}"), images, cfg, torch.device("cpu"),
                                  SkipReport()) for k in (0, 1)], axis=0)
    first = df[df["image"] == images[0]]
    best = np.argsort(-probs[0])[:2]
    assert list(first["value"]) == [f"val{j}" for j in best]  # names from the run's preprocess.json
    np.testing.assert_allclose(first["prob"], probs[0][best], rtol=1e-6)


def test_formats():
    df = top_values(["a.jpg", "b.jpg"], "skirt_length_labels", np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]),
                    ["Short", "Knee", "Midi"], top=2)
    csv = pd.read_csv(io.StringIO(format_tags(df, "csv")))
    assert list(csv.columns) == ["image", "key", "rank", "value", "prob"]
    assert list(csv["value"]) == ["Short", "Knee", "Midi", "Knee"]
    data = json.loads(format_tags(df, "json"))
    assert data[1] == {"image": "b.jpg", "tags": {"skirt_length_labels": [{"value": "Midi", "prob": 0.6},
                                                                          {"value": "Knee", "prob": 0.3}]}}
    table = format_tags(df, "table").splitlines()
    assert table[0].split() == ["image", "key", "top", "values"]
    assert table[1].split() == ["a.jpg", "skirt_length_labels", "Short", "0.70", "|", "Knee", "0.20"]
    with pytest.raises(FashiontagError):
        format_tags(df, "xml")


def test_unreadable_images_stop_unless_skipped(run, tmp_path):
    folder = tmp_path / "shop"
    folder.mkdir()
    good = next((run["test_root"] / "Images").rglob("*.png"))
    (folder / "ok.png").write_bytes(good.read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(FashiontagError, match=r"1 of 2 image\(s\) cannot be read.*broken.jpg.*--skip-bad"):
        tag_images([folder], run["run"], progress="log")
    df, skips = tag_images([folder], run["run"], skip_bad=True, progress="log")
    assert len(skips) == 1 and set(df["image"]) == {str(folder / "ok.png")}


def test_tag_cli_writes_out_once(run, tmp_path):
    out = tmp_path / "tags.json"
    args = ["tag", str(run["test_root"] / "Images"), "--run", str(run["run"]), "--format", "json", "--top", "1",
            "--out", str(out), "--tta"]
    assert main(args) == 0
    data = json.loads(out.read_text())
    assert len(data) == 3 and all(len(d["tags"]["skirt_length_labels"]) == 1 for d in data)
    assert main(args) == 2  # exists: refuses without --force
    assert main([*args, "--force"]) == 0
