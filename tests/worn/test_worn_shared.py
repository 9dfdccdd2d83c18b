"""The real COCO detector from ../shared/models (int8 TFLite YOLOv8n) through the worn split, on real photos.

People: every photo of a person that ships inside the installed packages (ultralytics' bus and zidane,
scikit-image's astronaut and cameraman, matplotlib's Grace Hopper) must be called worn. Flat garments:
clothing-small's photos are read in place from ../shared/data (never copied). Skips cleanly when the model
file, the ai-edge-litert runtime or the data is absent.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import matplotlib
import pytest
import skimage
from PIL import Image

from fashiontag.core.config import load_config
from fashiontag.worn.runner import run_split
from fashiontag.yolo.env import import_ultralytics

# Through import_ultralytics: a bare `import ultralytics` replaces PIL's Image.open for every later test in the same pytest process.
ultralytics = import_ultralytics()

SHARED = Path(os.environ.get("FASHIONTAG_SHARED", Path(__file__).resolve().parents[3] / "shared"))
TFLITE = SHARED / "models" / "yolov8n_int8.tflite"
CLOTHING = SHARED / "data" / "clothing-small"

PEOPLE = {  # real photos of people shipped inside installed packages
    "bus.jpg": Path(ultralytics.__file__).parent / "assets" / "bus.jpg",
    "zidane.jpg": Path(ultralytics.__file__).parent / "assets" / "zidane.jpg",
    "astronaut.png": Path(skimage.__file__).parent / "data" / "astronaut.png",
    "camera.png": Path(skimage.__file__).parent / "data" / "camera.png",
    "grace_hopper.jpg": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
}

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not TFLITE.is_file(), reason=f"real detector not found: {TFLITE}"),
    pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None,
                       reason="ai-edge-litert is not installed (pip install ai-edge-litert)"),
]


def cfg_for(tmp_path: Path) -> dict:
    return load_config(None, [f"worn.weights={TFLITE}", f"worn.out_dir={tmp_path / 'split'}", "worn.device=cpu"])


def test_every_packaged_photo_of_a_person_is_worn(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, src in PEOPLE.items():
        shutil.copy(src, photos / name)
    Image.new("RGB", (320, 320), (240, 240, 240)).save(photos / "blank.jpg")  # a plain backdrop: nobody
    df, _ = run_split(photos, cfg_for(tmp_path))
    by = df.set_index("image")
    assert by.loc[list(PEOPLE), "worn"].all(), by[["worn", "reason", "score", "conf", "box_aspect", "face"]]
    assert set(by.loc[list(PEOPLE), "reason"]) <= {"face", "figure"}
    assert by.loc["bus.jpg", "persons"] >= 3 and by.loc["zidane.jpg", "persons"] >= 2
    assert by.loc[["astronaut.png", "grace_hopper.jpg"], "reason"].eq("face").all()
    assert not by.loc["blank.jpg", "worn"] and by.loc["blank.jpg", "reason"] == "no person"
    assert set(df["imgsz"]) == {640} and set(df["rule"]) == {"evidence v2 figure 0.85/0.5"}


@pytest.mark.slow
@pytest.mark.skipif(not CLOTHING.is_dir(), reason=f"clothing-small not found: {CLOTHING}")
def test_flat_garments_are_not_worn(tmp_path):
    """Dresses and trousers, the garments the COCO person class confuses most with a torso or legs."""
    rows = []
    for cls in ("dress", "pants"):
        df, _ = run_split(CLOTHING / "validation" / cls, cfg_for(tmp_path))
        rows.append(df)
    n = sum(len(df) for df in rows)
    boxed = sum(int((df["persons"] > 0).sum()) for df in rows)
    worn = sum(int(df["worn"].sum()) for df in rows)
    assert n == 81 and boxed >= 20  # the detector alone calls a quarter or more of them worn
    assert worn <= 1, [df[df["worn"]][["image", "reason", "score"]] for df in rows]
