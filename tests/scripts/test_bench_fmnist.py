"""scripts/bench_fmnist.py: the project's in-memory epoch and the bare loop, side by side, on generated images."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench_fmnist  # noqa: E402


def test_side_by_side_epochs_write_their_figures(tmp_path: Path, capsys) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "bench.json"
    argv = ["--config", "fmnist_cnn1", "--synthetic", "600", "--repeats", "1", "--device", "cpu", "--out", str(out)]
    assert bench_fmnist.main(argv) == 0
    result = json.loads(out.read_text())
    assert (result["train_images"], result["valid_images"], result["batch"]) == (480, 120, 256)
    assert len(result["epoch_seconds"]["bare"]) == len(result["epoch_seconds"]["project"]) == 1
    assert result["project_vs_bare"] > 0 and result["passed"] == (result["project_vs_bare"] >= 0.7)
    assert "project / bare speed" in capsys.readouterr().out


def test_key_data_is_an_80_20_split() -> None:
    images, labels = bench_fmnist.load_images("", 50)
    kd = bench_fmnist.key_data(images, labels, Path("/tmp/unused"))
    assert (kd.table["fold"] == 0).sum() == 10 and kd.cache.pixels.shape == (50, 1, 28, 28)
    assert kd.targets.argmax(1).tolist() == labels.tolist() and kd.table["label"][3] == "nnnynnnnnn"
