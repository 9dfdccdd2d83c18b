"""detect-train / detect end to end on generated garments (CPU, untrained yolo11n.yaml, tiny images)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from fashiontag.cli import main
from fashiontag.core.errors import FashiontagError, WeightsUnavailableError
from fashiontag.data.boxes import Sample
from fashiontag.detect import train as detect_train
from fashiontag.synth.garment_boxes import write_images
from fashiontag.yolo.dataset import write_yolo_dataset

CLASSES = ["shirt", "jeans", "shoes"]
SIZE = 64


def make_dataset(root: Path, n: int, seed: int = 0) -> tuple[Path, list]:
    items = write_images(root / "src", n, CLASSES, seed=seed, size=(SIZE, SIZE))
    samples = [Sample(p, SIZE, SIZE, boxes, str(p)) for p, boxes in items]
    write_yolo_dataset(samples, root / "yolo", CLASSES, seed=seed)
    return root / "yolo" / "data.yaml", items


def settings(tmp_path: Path, epochs: int) -> list[str]:
    sets = [f"detect.epochs={epochs}", f"detect.imgsz={SIZE}", "detect.batch=8", "detect.mosaic=0",
            "detect.workers=0", "detect.warmup_epochs=1", "detect.weights=yolo11n.yaml", "detect.plots=false",
            "detect.device=cpu",
            f"detect.out_dir={tmp_path / 'runs'}", f"cache.dir={tmp_path / 'cache'}"]
    return [a for s in sets for a in ("--set", s)]


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_weights_resolution_offline(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(detect_train, "is_online", lambda: False)
    with pytest.raises(WeightsUnavailableError, match="detect.weights=yolo11n.pt .*yolo11n.yaml"):
        detect_train.resolve_detect_weights("yolo11n.pt", tmp_path)
    with pytest.raises(FashiontagError, match="file not found"):
        detect_train.resolve_detect_weights("models/missing.pt", tmp_path)
    assert detect_train.resolve_detect_weights("yolo11n.yaml", tmp_path) == "yolo11n.yaml"
    local = tmp_path / "weights" / "mine.pt"
    local.parent.mkdir()
    local.write_bytes(b"x")
    assert detect_train.resolve_detect_weights("mine.pt", tmp_path) == str(local)  # found in the cache


def test_detect_train_and_detect_write_their_outputs(tmp_path: Path, capsys) -> None:
    torch.set_num_threads(1)
    data, items = make_dataset(tmp_path, 10)
    assert main(["detect-train", "--data", str(data), "--exp", "t"] + settings(tmp_path, 1)) == 0
    run = tmp_path / "runs" / "t"
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"mAP50", "mAP50-95", "precision", "recall"} <= set(metrics)
    assert 0.0 <= metrics["mAP50-95"] <= metrics["mAP50"] <= 1.0
    assert (run / "weights" / "best.pt").is_file() and (run / "config.yaml").is_file()
    assert main(["detect-train", "--data", str(data), "--exp", "t"] + settings(tmp_path, 1)) == 2  # no --force

    images = tmp_path / "src"
    (images / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "pred"
    args = ["detect", str(images), "--weights", str(run / "weights" / "best.pt"), "--out", str(out),
            "--conf", "0.001", "--imgsz", str(SIZE)]
    assert main(args) == 2  # the broken image stops it, named
    assert main(args + ["--skip-bad", "--force"]) == 0
    table = pd.read_csv(out / "detections.csv")
    assert list(table.columns[:4]) == ["image", "label", "class", "conf"]
    assert set(table["label"]) <= set(CLASSES)
    per_image = json.loads((out / "detections.json").read_text())["images"]
    assert len(per_image) == len(items)
    assert all(set(i["tags"]) <= set(CLASSES) for i in per_image)
    assert len(list((out / "annotated").glob("*.jpg"))) == len(items)
    assert "broken.jpg" in (out / "skipped.csv").read_text()


@pytest.mark.slow
def test_tiny_detector_finds_the_drawn_garments(tmp_path: Path) -> None:
    """About 60-110 s on 2 CPU cores: 120 images, 30 epochs from scratch (mAP50 about 0.9)."""
    torch.set_num_threads(2)
    data, items = make_dataset(tmp_path, 120)
    assert main(["detect-train", "--data", str(data), "--exp", "t"] + settings(tmp_path, 30)) == 0
    metrics = json.loads((tmp_path / "runs" / "t" / "metrics.json").read_text())
    # Random boxes score ~0 mAP50; the drawn garments are found and named.
    assert metrics["mAP50"] > 0.5, metrics
    val_names = {p.name for p in (tmp_path / "yolo" / "images" / "val").iterdir()}
    out = tmp_path / "pred"
    assert main(["detect", str(tmp_path / "yolo" / "images" / "val"), "--weights",
                 str(tmp_path / "runs" / "t" / "weights" / "best.pt"), "--out", str(out), "--conf", "0.1"]) == 0
    found = json.loads((out / "detections.json").read_text())["images"]
    truth = {p.name: boxes[0] for p, boxes in items if p.name in val_names}
    hits = 0
    for rec in found:
        t = truth[rec["image"]]
        if rec["boxes"]:
            top = rec["boxes"][0]
            hits += top["label"] == t.label and iou(top["box"], [t.x1, t.y1, t.x2, t.y2]) > 0.5
    assert hits >= 0.6 * len(truth), (hits, len(truth))
