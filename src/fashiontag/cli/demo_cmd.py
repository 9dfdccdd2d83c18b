"""`fashiontag demo`: the whole pipeline on generated data, ending in a validated, scored submission."""

from __future__ import annotations

import argparse
import logging

from fashiontag.cli.common import add_config_args

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="generate data, train, predict with TTA, stack, blend, report, submit and score (CPU, minutes)",
        description="Runs every stage on data/demo with configs/demo.yaml (the embedded EfficientNet-Lite0 "
        "weights, so no network is needed). Finished stages are reused when run again.",
    )
    p.add_argument("--workdir", default="data/demo", help="where the generated dataset lives (default data/demo)")
    add_config_args(p, default="demo")
    p.add_argument("--out", default="submissions/demo.csv", help="submission file (rewritten by the demo)")
    p.add_argument("--with-split", action="store_true",
                   help="also run the hanger-vs-worn split with a tiny detector trained on generated figures")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fashiontag.cli.common import format_scores
    from fashiontag.recipes.demo import run_demo

    table = run_demo(args.workdir, args.config, args.overrides, args.out, split=args.with_split)
    overall = table.iloc[-1]
    print(f"\nDemo submission {args.out} (validated) scored against {args.workdir}/test_answers.csv:")
    print(format_scores(table))
    log.info("demo done: mAP %.4f, accuracy %.4f", overall["mAP"], overall["accuracy"])
    return 0
