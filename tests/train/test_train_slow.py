"""Slow end-to-end training checks in real subprocesses: SIGKILL + resume, and the --gpus job queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from fashiontag.train import runner
from helpers.training import KEY, tiny_config, tiny_root

CLI = [sys.executable, "-c", "import sys; from fashiontag.cli import main; sys.exit(main())"]


@pytest.mark.slow
def test_sigkill_during_second_epoch_of_demo_then_resume(tmp_path):
    from fashiontag.synth.demo import make_demo_data

    make_demo_data(tmp_path / "demo", n_train=60, n_test=3, keys=["skirt_length_labels"])
    cmd = [*CLI, "train", "--data", str(tmp_path / "demo" / "train"), "--config", "demo", "--cat", "skirt_length",
           "--folds", "0", "--set", f"runs_dir={tmp_path / 'runs'}", "--set", f"cache.dir={tmp_path / 'cache'}",
           "--set", f"data.folds_dir={tmp_path / 'folds'}"]
    fold_dir = tmp_path / "runs" / "demo" / "skirt_length_labels" / "fold_0"
    log_csv = fold_dir / "log.csv"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if log_csv.exists() and len(pd.read_csv(log_csv)) >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.3)  # inside the second epoch
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert not (fold_dir / "done.json").exists()
    assert (fold_dir / "ckpt" / "last.pth").exists()
    rows_before = len(pd.read_csv(log_csv))
    assert rows_before < 8

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming at phase" in done.stderr
    log = pd.read_csv(log_csv)
    assert log["epoch"].tolist() == list(range(1, 9)), "8 epochs, each logged once across the kill"
    assert json.loads((fold_dir / "done.json").read_text())["epochs"] == 8
    assert not (fold_dir / "ckpt").exists()


@pytest.mark.slow
def test_gpus_runs_one_subprocess_per_job_then_merges(tmp_path, make_fashionai_root, monkeypatch):
    root = tiny_root(make_fashionai_root, tmp_path)
    monkeypatch.setattr(runner, "_usable_gpus", lambda n: n)  # pretend there are 2 GPUs (children use the CPU)
    cfg = tiny_config(tmp_path, "exp=par")
    result = runner.train_run(root, "all", "all", cfg, gpus=2)  # each job: python -m fashiontag.train.worker
    key_dir = tmp_path / "runs" / "par" / KEY
    assert result.run_dir == key_dir.parent and cfg["data"]["root"] != str(root)  # the caller's config is kept
    for fold in (0, 1):
        assert (key_dir / f"fold_{fold}" / "done.json").exists()
        worker_log = (key_dir / f"fold_{fold}" / "worker.log").read_text()  # each job's own subprocess
        assert f"{KEY} fold {fold} done" in worker_log and f"fold {1 - fold}:" not in worker_log
    assert result.cv[KEY]["complete"] is True and result.cv[KEY]["n"] == 12
