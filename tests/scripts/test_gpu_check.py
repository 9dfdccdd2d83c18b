"""scripts/gpu_check.py: the reduced CPU form of `make gpu-check` runs end to end (under 2 minutes on a CPU)
and writes the JSON report and the Markdown table; the GPU tier it runs skips, with its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_cpu_form_writes_the_report(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FASHIONTAG_GPU_TIER_DEVICE"}
    env.update(FASHIONTAG_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(SCRIPTS / "gpu_check.py"), "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["form"] == "reduced CPU" and report["device"].startswith("CPU")
    tier = report["tier"]
    assert tier["tests"] >= 8 and tier["skipped"] == tier["tests"] and tier["failures"] == 0
    (row,) = report["bench"]["rows"]
    assert row["model"].startswith("efficientnet_lite0@32 (clothing_lite0)") and row["train_ok"] is None
    assert all(row[c] > 0 for c in ("bare", "loader", "project", "bare_inf", "tta_inf"))
    ft = report["finetune"]
    assert "skipped" in ft or (ft["n_train"] > 0 and 0 <= ft["accuracy"] <= 1)
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| setup | batch |" in table and "n/a (CPU)" in table and "GPU tests" in table
    assert report["seconds"] < seconds + 1
