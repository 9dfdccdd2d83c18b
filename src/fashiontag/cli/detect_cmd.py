"""`detect-convert`, `detect-train`, `detect`: clothing detection with ultralytics (see fashiontag.detect)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from fashiontag.cli.common import add_config_args, add_skip_arg

log = logging.getLogger(__name__)


def _convert(args: argparse.Namespace) -> int:
    from fashiontag.core.skips import SkipReport
    from fashiontag.detect.classes import ALIASES, parse_classes
    from fashiontag.yolo.dataset import write_yolo_dataset

    skips = SkipReport(skip=args.skip_bad)
    if args.format == "voc":
        from fashiontag.detect.convert_voc import read_voc_folder

        samples = read_voc_folder(args.src, args.images, skips)
    else:
        from fashiontag.detect.convert_dataturks import read_dataturks

        samples = read_dataturks(args.src, args.images, skips)
    summary = write_yolo_dataset(samples, args.out, parse_classes(args.classes), args.val_fraction, args.seed,
                                 args.force, bad_images=skips.rows, aliases=ALIASES)
    print(json.dumps(summary, indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    from fashiontag.core.config import load_config
    from fashiontag.detect.train import train_detector

    cfg = load_config(args.config, args.overrides, family="detection")
    result = train_detector(args.data, cfg, exp=args.exp, force=args.force)
    print(json.dumps({k: v for k, v in result.items() if k != "per_class"}, indent=2))
    return 0


def _detect(args: argparse.Namespace) -> int:
    from fashiontag.core.config import load_config
    from fashiontag.detect.predict import detect_images

    cfg = load_config(args.config, args.overrides, family="detection")
    d = cfg["detect"]
    out = args.out or Path(d["out_dir"]) / "predictions" / Path(args.inputs).stem
    table = detect_images(
        args.inputs, args.weights, out, conf=d["conf"] if args.conf is None else args.conf, iou=d["iou"],
        imgsz=args.imgsz, device=d["device"],
        batch=d["batch"], skip_bad=args.skip_bad, force=args.force, cache_dir=cfg["cache"]["dir"],
    )
    print(f"{len(table)} box(es); tags and boxes in {Path(out) / 'detections.json'} and detections.csv")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect-convert", help="Pascal VOC XML or Dataturks JSON lines -> YOLO dataset (80/20 split)")
    p.add_argument("format", choices=["voc", "dataturks"])
    p.add_argument("src", help="VOC: folder of .xml files; dataturks: the .json/.jsonl file")
    p.add_argument("out", help="output folder: images/, labels/, data.yaml, bad_boxes.csv, summary.json")
    p.add_argument("--images", default=None,
                   help="folder holding the images (VOC: if not beside the XML; dataturks: the local copies of URLs)")
    p.add_argument("--classes", default=None,
                   help="comma list of class names (default: shirt,t-shirt,jacket,jeans,trousers,sunglasses,"
                        "shoes,top,skirt); other labels are bad boxes")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="rebuild an existing dataset folder")
    add_skip_arg(p)
    p.set_defaults(func=_convert)

    p = sub.add_parser("detect-train", help="train an ultralytics clothing detector; reports val mAP50 / mAP50-95")
    p.add_argument("--data", required=True, help="data.yaml of a YOLO dataset (from detect-convert)")
    p.add_argument("--exp", default=None, help="run name under detect.out_dir (default: the dataset folder name)")
    p.add_argument("--force", action="store_true", help="retrain over a finished run")
    add_config_args(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("detect", help="tag garments in an image or folder: boxes + confidences (JSON, CSV), annotated images")
    p.add_argument("inputs", metavar="IMAGE_OR_DIR")
    p.add_argument("--weights", required=True, help="detector weights, e.g. runs/detect/<exp>/weights/best.pt")
    p.add_argument("--conf", type=float, default=None, help="minimum confidence (default: detect.conf)")
    p.add_argument("--imgsz", type=int, default=None, help="inference size (default: the size the weights were trained at)")
    p.add_argument("--out", default=None, help="output folder (default: <detect.out_dir>/predictions/<input name>)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output folder's files")
    add_skip_arg(p)
    add_config_args(p)
    p.set_defaults(func=_detect)
