"""The real COCO detector from ../shared/models (int8 TFLite YOLOv8n) through the split code path.

Skips cleanly when the model file or the ai-edge-litert runtime is absent.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from fashiontag.core.config import load_config
from fashiontag.worn.runner import run_split

SHARED = Path(os.environ.get("FASHIONTAG_SHARED", Path(__file__).resolve().parents[3] / "shared"))
TFLITE = SHARED / "models" / "yolov8n_int8.tflite"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not TFLITE.is_file(), reason=f"real detector not found: {TFLITE}"),
    pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None,
                       reason="ai-edge-litert is not installed (pip install ai-edge-litert)"),
]


def test_tflite_detector_finds_people_in_real_photos(tmp_path):
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"  # real street photos shipped with ultralytics
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("bus.jpg", "zidane.jpg"):
        shutil.copy(assets / name, photos / name)
    Image.new("RGB", (320, 320), (240, 240, 240)).save(photos / "blank.jpg")  # a plain backdrop: nobody
    cfg = load_config(None, [f"worn.weights={TFLITE}", f"worn.out_dir={tmp_path / 'split'}", "worn.device=cpu"])
    df, _ = run_split(photos, cfg)
    by = df.set_index("image")
    assert by.loc["bus.jpg", "worn"] and by.loc["bus.jpg", "persons"] >= 3
    assert by.loc["zidane.jpg", "worn"] and by.loc["zidane.jpg", "persons"] >= 2
    assert not by.loc["blank.jpg", "worn"]
    assert by.loc["bus.jpg", "conf"] >= 0.5 and set(df["imgsz"]) == {640}
