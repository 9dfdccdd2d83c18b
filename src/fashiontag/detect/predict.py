"""`detect`: tag garments in images with a trained detector: boxes, confidences, annotated copies.

Writes into OUT: detections.csv (one row per box), detections.json (per image: size, tags, boxes)
and annotated/<relative path>.jpg (ultralytics' own drawing). Unreadable images stop the command with
the file named, or with --skip-bad are counted into skipped.csv.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.core.files import atomic_write_csv, atomic_write_json
from fashiontag.core.skips import SkipReport
from fashiontag.data.images import is_image_file, open_rgb
from fashiontag.detect.train import load_yolo
from fashiontag.yolo.person_detector import resolve_device

log = logging.getLogger(__name__)

CSV_COLUMNS = ["image", "label", "class", "conf", "x1", "y1", "x2", "y2", "width", "height"]


def list_images(path: str | Path) -> tuple[Path, list[Path]]:
    """(root, images): a single file, or every image under a folder (recursive, sorted)."""
    path = Path(path)
    if path.is_file():
        return path.parent, [path]
    if path.is_dir():
        images = sorted(p for p in path.rglob("*") if is_image_file(p))
        if not images:
            raise FashiontagError(f"{path}: no image files found")
        return path, images
    raise FashiontagError(f"image or folder not found: {path}")


def detect_images(
    inputs: str | Path, weights: str, out: str | Path, conf: float = 0.25, iou: float = 0.7,
    imgsz: int | None = None, device: str = "auto", batch: int = 16, skip_bad: bool = False, force: bool = False,
    cache_dir: str | Path = "cache",
) -> pd.DataFrame:
    """Detect garments in `inputs`; returns the detections table (also written to OUT).

    imgsz None: the size the weights were trained at (predicting at another scale loses most boxes).
    """
    out = Path(out)
    if (out / "detections.csv").exists() and not force:
        raise FashiontagError(f"{out / 'detections.csv'} already exists; pass --force or another --out")
    root, paths = list_images(inputs)
    model = load_yolo(weights, cache_dir)
    names = dict(model.names)
    if imgsz is None:
        imgsz = int((getattr(model, "overrides", None) or {}).get("imgsz") or 640)
    device = resolve_device(device)
    skips = SkipReport(skip=skip_bad)
    rows: list[dict] = []
    per_image: list[dict] = []
    for start in range(0, len(paths), batch):
        chunk, images = [], []
        for p in paths[start:start + batch]:
            try:
                images.append(open_rgb(p))
                chunk.append(p)
            except DataError as err:
                skips.handle(err)
        if not images:
            continue
        results = model.predict(images, conf=conf, iou=iou, imgsz=imgsz, device=device, verbose=False)
        for path, img, res in zip(chunk, images, results, strict=True):
            rel = path.relative_to(root).as_posix()
            boxes = []
            for xyxy, score, cls in zip(res.boxes.xyxy.tolist(), res.boxes.conf.tolist(),
                                        res.boxes.cls.tolist(), strict=True):
                label = str(names[int(cls)])
                box = {"label": label, "class": int(cls), "conf": round(float(score), 4),
                       "box": [round(v, 1) for v in xyxy]}
                boxes.append(box)
                rows.append({"image": rel, "label": label, "class": int(cls), "conf": box["conf"],
                             **dict(zip(("x1", "y1", "x2", "y2"), box["box"], strict=True)),
                             "width": img.width, "height": img.height})
            # Tags: each garment once, at its best confidence, most confident first.
            best: dict[str, float] = {}
            for b in boxes:
                best[b["label"]] = max(best.get(b["label"], 0.0), b["conf"])
            per_image.append({"image": rel, "width": img.width, "height": img.height,
                              "tags": sorted(best, key=best.get, reverse=True), "boxes": boxes})
            target = out / "annotated" / Path(rel).with_suffix(".jpg")
            target.parent.mkdir(parents=True, exist_ok=True)
            res.save(filename=str(target))
    table = pd.DataFrame(rows, columns=CSV_COLUMNS)
    atomic_write_json(out / "detections.json", {"weights": str(weights), "conf": conf, "images": per_image})
    atomic_write_csv(out / "detections.csv", table)
    skips.write(out / "skipped.csv")
    log.info("%d box(es) in %d image(s) -> %s", len(table), len(per_image), out)
    return table
