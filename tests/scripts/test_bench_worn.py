"""scripts/bench_worn.py: the split's cost per photo with the detector alone and with the worn decision."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.yolo import save_untrained_yolo

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench_worn  # noqa: E402


def test_both_timings_on_the_same_photos(tmp_path):
    weights = save_untrained_yolo(tmp_path)
    rng = np.random.default_rng(0)
    files = []
    for i in range(3):
        files.append(tmp_path / f"p{i}.jpg")
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(files[-1])
    alone, decided, boxed = bench_worn.bench(files, str(weights), batch=2)
    assert boxed == 0 and 0 < alone <= decided  # nobody found: the decision adds (almost) nothing
    assert all(p.is_file() for p in bench_worn.PEOPLE)  # the packaged photos of people are where it looks
