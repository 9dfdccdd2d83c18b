"""scripts/bench.py: the CI-safe CPU form runs end to end and writes every figure; its helpers behave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench  # noqa: E402


def test_parse_spec_reads_optional_batch_and_rejects_garbage():
    assert bench.parse_spec("resnext101_32x8d:512:32", 128) == ("resnext101_32x8d", 512, 32)
    assert bench.parse_spec("efficientnet_lite0:224", 64) == ("efficientnet_lite0", 224, 64)
    for bad in ("efficientnet_lite0", "lite0:big", "a:1:2:3"):
        with pytest.raises(SystemExit, match="backbone:size"):
            bench.parse_spec(bad, 8)


def test_enough_repeats_short_lists_to_fill_the_timed_batches():
    paths = ["a.jpg", "b.jpg", "c.jpg"]
    out = bench.enough(paths, bs=4, n=5)
    assert len(out) >= 4 * (5 + 2 + 1) and set(out) == set(paths)
    long = [f"{i}.jpg" for i in range(500)]
    assert bench.enough(long, bs=4, n=5) == long  # a long list is left whole


def test_table_marks_out_of_memory_and_skipped_columns():
    row = {"model": "m@224", "batch": 8, "bare": 100.0, "loader": 400.0, "project": 90.0, "plain": float("nan"),
           "bare_inf": 200.0, "tta_inf": 180.0, "plain_inf": 50.0}
    text = bench.table([row])
    cells = [c.strip() for c in text.splitlines()[-1].strip("|").split("|")]
    assert cells[:7] == ["m@224", "8", "100.0", "400.0 (400%)", "90.0 (90%)", "-", "OOM"]
    assert cells[8:] == ["180.0 (90%)", "50.0 (25%)"]


def test_photo_like_jpegs_are_distinct_readable_images(tmp_path):
    from PIL import Image

    paths = bench.photo_like_jpegs(tmp_path, 3, size=64)
    sizes = {Image.open(p).size for p in paths}
    assert sizes == {(64, 64)}
    assert len({Path(p).read_bytes() for p in paths}) == 3


def test_cpu_bench_runs_end_to_end_and_writes_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "FASHIONTAG_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench.py"), "--models", "efficientnet_lite0:32:4", "--batches", "1",
         "--n-images", "6", "--profile", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SMALL version" in proc.stdout
    assert "waiting for input" in proc.stdout and "aten::" in proc.stdout  # the profile was printed
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert row["model"] == "efficientnet_lite0@32" and row["batch"] == 4
    for col in ("bare", "loader", "project", "plain", "bare_inf", "tta_inf", "plain_inf"):
        assert row[col] > 0 and row[col] != float("inf"), col
    assert "compiled" not in row  # only with --compile
    prof = row["profile"]
    assert prof["data_s"] > 0 and prof["step_s"] > 0 and 0 < prof["data_share"] < 1
