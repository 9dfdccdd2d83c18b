"""The worn split's cost per photo, side by side in one run: the detector alone (decode + detect, the split
before the evidence rule) and with the evidence decision added, on the same photos, batch by batch.

    .venv/bin/python scripts/bench_worn.py --weights ../shared/models/yolov8n_int8.tflite \
        --per-folder 12 ../shared/data/clothing-small/validation/*
    .venv/bin/python scripts/bench_worn.py --weights ... --people 4   # the packaged photos of people, 4 times

Prints one line per photo set: seconds per photo both ways and their ratio.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import matplotlib
import skimage
import torch

from fashiontag.core.config import load_config
from fashiontag.data.images import is_image_file, open_rgb
from fashiontag.worn.decision import Rule, call_photo
from fashiontag.yolo.env import import_ultralytics
from fashiontag.yolo.person_detector import detect_people, load_detector

ultralytics = import_ultralytics()  # never a bare import: it would replace PIL's Image.open process-wide

log = logging.getLogger("bench_worn")

PEOPLE = [Path(ultralytics.__file__).parent / "assets" / "bus.jpg",
          Path(ultralytics.__file__).parent / "assets" / "zidane.jpg",
          Path(skimage.__file__).parent / "data" / "astronaut.png",
          Path(skimage.__file__).parent / "data" / "camera.png",
          Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"]


def bench(files: list[Path], weights: str, batch: int = 16) -> tuple[float, float, int]:
    """(detector-alone s/photo, with-decision s/photo, photos with a person box) over `files`."""
    det = load_detector(weights, device="cpu")
    conf = float(load_config(None, [])["worn"]["conf"])
    rule = Rule.from_config(load_config(None, []), trained_against_garments=False)
    detect_people(det, [open_rgb(files[0])], conf)  # warm-up: the first call builds the interpreter
    alone = decision = 0.0
    boxed = 0
    for i in range(0, len(files), batch):
        t0 = time.perf_counter()
        pics = [open_rgb(f) for f in files[i: i + batch]]
        found = detect_people(det, pics, conf)
        t1 = time.perf_counter()
        for pic, persons in zip(pics, found, strict=True):
            call_photo(pic, persons, rule)
        decision += time.perf_counter() - t1
        alone += t1 - t0
        boxed += sum(p.count > 0 for p in found)
    return alone / len(files), (alone + decision) / len(files), boxed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="*", type=Path, help="photo folders (sorted files, --per-folder of each)")
    p.add_argument("--weights", required=True, help="ultralytics weights (e.g. the COCO YOLOv8n int8 tflite)")
    p.add_argument("--per-folder", type=int, default=12)
    p.add_argument("--people", type=int, default=0, help="also time the packaged photos of people, N times over")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    sets = {}
    if args.folders:
        sets["folders"] = [f for d in args.folders
                           for f in sorted(x for x in d.iterdir() if is_image_file(x))[: args.per_folder]]
    if args.people:
        sets["people"] = PEOPLE * args.people
    for name, files in sets.items():
        alone, decided, boxed = bench(files, args.weights)
        log.info("%s: %d photos (%d with a person box): detector alone %.3f s/photo, with the evidence decision "
                 "%.3f s/photo, ratio %.2f", name, len(files), boxed, alone, decided, decided / alone)


if __name__ == "__main__":
    main()
