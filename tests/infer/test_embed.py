"""`fashiontag embed` on a really trained (tiny) fold: projector files, plots, inputs of every kind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fashiontag.cli import main
from fashiontag.core.errors import FashiontagError
from fashiontag.data.idx import KEY, import_idx
from fashiontag.infer.embed import resolve_fold_dir, sample
from helpers.fmnist_idx import write_synthetic


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """fmnist_cnn1 trained 3 epochs on fold 0 of generated brightness-coded Fashion-MNIST stand-ins."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("embed")
    import_idx(write_synthetic(tmp / "idx", 200, 40), tmp / "fm")
    sets = {"data.folds_dir": tmp / "folds", "runs_dir": tmp / "runs", "cache.dir": tmp / "cache",
            "train.unfrozen_epochs": 3, "train.batch_size": 32, "train.lr": 0.01, "train.device": "cpu",
            "augment.rotate": 0, "augment.zoom": "[1.0,1.0]"}
    args = ["train", "--config", "fmnist_cnn1", "--data", str(tmp / "fm" / "train"), "--folds", "0", "--exp", "fm"]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    assert main(args) == 0
    return {"tmp": tmp, "run": tmp / "runs" / "fm"}


def read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


def test_embed_labelled_root(trained: dict, capsys) -> None:
    tmp, out = trained["tmp"], trained["tmp"] / "emb"
    args = ["embed", str(trained["run"]), "--images", str(tmp / "fm" / "train"), "--limit", "120", "--out", str(out),
            "--cache-dir", str(tmp / "cache")]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 120 and summary["dim"] == 128  # fmnist_cnn1: its dense 128 (a 1x1 map)
    tensors = np.array(read_tsv(out / "tensors.tsv"), dtype=np.float64)
    meta = read_tsv(out / "metadata.tsv")
    assert tensors.shape == (120, 128)
    assert meta[0] == ["image", "label"] and len(meta) == 121  # header because there are 2 columns
    assert "tensor_path: \"tensors.tsv\"" in (out / "projector_config.pbtxt").read_text()
    for png in ("pca.png", "tsne.png"):
        assert (out / png).stat().st_size > 5000
    # The trained body separates the classes: nearest class centroid is right far above chance (0.1).
    labels = np.array([row[1] for row in meta[1:]])
    classes = sorted(set(labels))
    centroids = np.stack([tensors[labels == c].mean(axis=0) for c in classes])
    nearest = np.argmin(((tensors[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (np.array(classes)[nearest] == labels).mean() > 0.5
    assert main(args) == 2  # exists: --force needed


def test_embed_test_root_and_folders(trained: dict, write_image) -> None:
    tmp = trained["tmp"]
    out = tmp / "emb_test"
    assert main(["embed", str(trained["run"] / KEY), "--images", str(tmp / "fm" / "test"), "--out", str(out),
                 "--cache-dir", str(tmp / "cache")]) == 0
    meta = (out / "metadata.tsv").read_text().splitlines()
    assert len(meta) == 40 and meta[0].startswith("Images/")  # one column (no labels): no header row
    folders = tmp / "folders"
    for i in range(6):
        write_image(folders / ("coat" if i % 2 else "dress") / f"{i}.png", seed=i, fmt="PNG")
    (folders / "dress" / "bad.png").write_bytes(b"broken")
    common = ["--images", str(folders), "--cache-dir", str(tmp / "cache2")]
    assert main(["embed", str(trained["run"]), "--out", str(tmp / "e1"), *common]) == 2  # bad image named
    assert main(["embed", str(trained["run"]), "--out", str(tmp / "e2"), "--skip-bad", *common]) == 0
    meta = read_tsv(tmp / "e2" / "metadata.tsv")
    assert meta[0] == ["image", "label"] and {r[1] for r in meta[1:]} == {"coat", "dress"} and len(meta) == 7
    assert "bad.png" in (tmp / "e2" / "skipped.csv").read_text()


def test_run_resolution_and_sampling(trained: dict) -> None:
    fold = resolve_fold_dir(trained["run"])
    assert fold.name == "fold_0" and resolve_fold_dir(fold) == fold
    with pytest.raises(FashiontagError, match="fold 3 is not finished"):
        resolve_fold_dir(trained["run"], fold=3)
    with pytest.raises(FashiontagError, match="no key 'skirt'"):
        resolve_fold_dir(trained["run"], cat="skirt")
    items = pd.DataFrame({"image": [f"{i}" for i in range(50)]})
    a, b = sample(items, 10, 0), sample(items, 10, 0)
    assert a.equals(b) and len(a) == 10 and list(a["image"]) == sorted(a["image"], key=int)
