"""`fashiontag worn` (hanger vs worn: YOLO person detection) and `fashiontag worn-train-tiny`."""

from __future__ import annotations

import argparse
import logging

from fashiontag.cli.common import add_config_args, add_skip_arg

log = logging.getLogger("fashiontag.worn")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worn",
        help="YOLO person detection over a dataset: the split file runs/worn/<dataset>.csv (worn vs hanger/flat)",
        description="Detect people (COCO class 0) in every image of DATA (label.csv / question.csv rows, or "
        "any image folder); cached and resumable. Weights from worn.weights (e.g. --set "
        "worn.weights=/path/to/best.pt, or tiny for the generated demo data).",
    )
    p.add_argument("--data", required=True, help="dataset root (FashionAI layout) or a folder of images")
    p.add_argument("--out", default=None, help="split file to write (default: <worn.out_dir>/<dataset>.csv)")
    p.add_argument("--force", action="store_true",
                   help="recompute every image and replace a split file made with other detector settings")
    p.add_argument("--review", type=int, default=0, metavar="N",
                   help="also write contact sheets of the N least certain worn and not-worn calls, with their "
                   "evidence (<split file>.review-worn.jpg, .review-hanger.jpg, .review.csv)")
    add_config_args(p)
    add_skip_arg(p)
    p.set_defaults(func=run_worn_cmd)

    t = sub.add_parser(
        "worn-train-tiny",
        help="train (or reuse) the tiny person detector on generated demo images; prints its weights path",
    )
    t.add_argument("--out", default="cache/tiny_person_detector", help="cache folder (keyed by seed + settings)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=None, help="default: the tiny detector's tuned setting")
    t.set_defaults(func=run_train_tiny)


def run_worn_cmd(args: argparse.Namespace) -> int:
    from fashiontag.core.config import load_config
    from fashiontag.core.errors import FashiontagError
    from fashiontag.core.skips import SkipReport
    from fashiontag.worn.runner import run_split

    cfg = load_config(args.config, args.overrides)
    skips = SkipReport(skip=args.skip_bad or bool(cfg["data"]["skip_bad"]))
    if args.review < 0:
        raise FashiontagError(f"--review takes a number of photos >= 0, got {args.review}")
    run_split(args.data, cfg, force=args.force, out=args.out, skips=skips, review=args.review)  # logs the file
    return 0


def run_train_tiny(args: argparse.Namespace) -> int:
    from fashiontag.yolo.tiny_detector import train_tiny_person_detector

    kwargs = {"epochs": args.epochs} if args.epochs is not None else {}
    # The path on stdout, so scripts can do --set worn.weights=$(fashiontag worn-train-tiny).
    print(train_tiny_person_detector(args.out, seed=args.seed, **kwargs))
    return 0
