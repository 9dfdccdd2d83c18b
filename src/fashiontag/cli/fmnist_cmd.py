"""`import-idx` (Fashion-MNIST idx files -> FashionAI layout) and `fmnist` (import, two-step train, test score)."""

from __future__ import annotations

import argparse
import json
import logging

from fashiontag.cli.common import add_config_args

log = logging.getLogger(__name__)


def cmd_import_idx(args: argparse.Namespace) -> int:
    from fashiontag.data.idx import import_idx

    summary = import_idx(args.src, args.dst, limit=args.limit, test_limit=args.test_limit, force=args.force)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_fmnist(args: argparse.Namespace) -> int:
    from fashiontag.core.config import load_config
    from fashiontag.recipes.fmnist import run_fmnist

    overrides = list(args.overrides)
    if args.force:
        overrides.append("train.force=true")
    cfg = load_config(args.config, overrides + ([f"exp={args.exp}"] if args.exp else []), family="fmnist")
    if args.exp and cfg["fmnist"]["configs"]:
        log.warning("--exp names a single run; %s trains fmnist.configs %s under their own names",
                    args.config, cfg["fmnist"]["configs"])
    rows = run_fmnist(cfg, args.config, lambda name, sets: load_config(name, sets, family="fmnist"), overrides)
    for row in rows:
        print(f"{row['name']}: {row['phase']}, {row['epochs']} epochs, valid accuracy {row['valid_accuracy']:.4f}, "
              f"test accuracy {row['test_accuracy']:.4f}  log loss {row['test_log_loss']:.4f}  ({row['seconds']:.0f} s)")
    print(f"report: {cfg['fmnist']['report']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-idx", help="Fashion-MNIST idx files -> DST/train (label.csv), DST/test (question.csv), DST/test_answers.csv",
        description="Read the four official Fashion-MNIST idx files (.gz or unpacked) from DIR and write them in "
                    "the FashionAI layout with one key, fmnist_labels. Get the files with `apt-get install "
                    "dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist) or from "
                    "https://github.com/zalandoresearch/fashion-mnist (data/fashion).",
    )
    p.add_argument("src", metavar="DIR", help="folder with train-images-idx3-ubyte.gz and the three other files")
    p.add_argument("dst", metavar="DST", help="destination folder (gets train/, test/, test_answers.csv)")
    p.add_argument("--limit", type=int, default=None, help="keep only the first N training images")
    p.add_argument("--test-limit", type=int, default=None, help="keep only the first N test images (default: --limit)")
    p.add_argument("--force", action="store_true", help="import over an existing import")
    p.set_defaults(func=cmd_import_idx)

    p = sub.add_parser(
        "fmnist", help="Fashion-MNIST: import (once), train each model on the 80/20 holdout fold, then with "
                       "augmentation, score the 10k test set, write reports/fmnist.md",
        description="Without --config: configs/fmnist.yaml, the write-ups' table (the 1-, 3- and 4-conv CNNs, "
                    "plain then augmented). --config NAME trains that config alone (e.g. fmnist_best, "
                    "fmnist_lite0); its rows join the report's table.",
    )
    p.add_argument("--exp", default=None, help="run name of a single-config run (default: the config file's stem; "
                                           "the augmented phase adds _aug)")
    p.add_argument("--force", action="store_true", help="retrain finished runs")
    add_config_args(p, default="fmnist")
    p.set_defaults(func=cmd_fmnist)
