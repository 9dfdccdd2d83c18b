"""DDP end to end: `fashiontag train` launched by torchrun as 2 CPU processes (gloo) trains one fold together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.training import KEY, tiny_overrides

FOLD_FILES = ["config.yaml", "preprocess.json", "model.pth", "log.csv", "lr_find.png", "curves.png", "confusion.png",
              "oof.csv", "train.log", "done.json"]


def _launch(tmp_path: Path, root: Path, *extra: str, timeout: int = 600) -> subprocess.CompletedProcess:
    script = tmp_path / "fashiontag_main.py"  # what the `fashiontag` console script runs
    script.write_text("import sys\nfrom fashiontag.cli import main\nsys.exit(main())\n")
    sets = tiny_overrides(tmp_path, "train.lr=auto", "train.lr_find=true", "train.lr_find_iters=10", *extra)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
           "train", "--data", str(root), "--cat", KEY, "--folds", "0", "--exp", "ddp"]
    for item in sets:
        cmd += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FASHIONTAG_OFFLINE": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_two_cpu_processes_train_one_fold_and_rank0_writes_each_file_once(tmp_path, make_fashionai_root):
    # 36 images, 2 folds: 18 training images, 9 per process, 2 batches of 4 each.
    root = make_fashionai_root(tmp_path / "data" / "train", keys={KEY: ["coat", "dress", "shirt"]}, per_value=12)
    done = _launch(tmp_path, root)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "DDP: 2 processes (CPU, backend gloo)" in out
    # Rank 1 logs warnings only: each INFO line below comes from rank 0, once.
    assert out.count("fold 0 done in") == 1
    assert out.count("CV over folds [0]") == 1

    key_dir = tmp_path / "runs" / "ddp" / KEY
    fold_dir = key_dir / "fold_0"
    missing = [f for f in FOLD_FILES if not (fold_dir / f).is_file()]
    assert not missing
    assert not (fold_dir / "ckpt").exists(), "the checkpoint is dropped when the fold is done"
    assert (key_dir / "oof.csv").is_file() and (key_dir / "cv.json").is_file()

    train_log = (fold_dir / "train.log").read_text()
    assert train_log.count("done in") == 1 and train_log.count("epoch 1/1") == 2, train_log
    log_csv = pd.read_csv(fold_dir / "log.csv")
    assert log_csv["epoch"].tolist() == [1, 2]
    info = json.loads((fold_dir / "done.json").read_text())
    assert info["lr_source"] == "lr_find valley" and info["epochs"] == 2

    # The OOF file covers every validation image of the fold exactly once, in probabilities summing to 1.
    folds = pd.read_csv(key_dir / "folds.csv")
    valid = sorted(folds.loc[folds["fold"] == 0, "image"])
    oof = pd.read_csv(fold_dir / "oof.csv")
    assert sorted(oof["image"]) == valid and oof["image"].is_unique
    probs = oof[[c for c in oof.columns if c.startswith("p_")]].to_numpy()
    assert probs.shape == (len(valid), 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert pd.read_csv(key_dir / "oof.csv")["image"].tolist() == oof["image"].tolist()
    assert json.loads((key_dir / "cv.json").read_text())["n"] == len(valid)


@pytest.mark.slow
def test_ddp_refuses_the_feature_cache_path_on_every_rank(tmp_path, make_fashionai_root):
    root = make_fashionai_root(tmp_path / "data" / "train", keys={KEY: ["coat", "dress", "shirt"]}, per_value=4)
    done = _launch(tmp_path, root, "train.feature_cache=true", "train.unfrozen_epochs=0", timeout=300)
    assert done.returncode != 0
    assert (done.stdout + done.stderr).count("train.feature_cache: true is a single-process") == 2
    assert not (tmp_path / "runs" / "ddp" / KEY).exists()
