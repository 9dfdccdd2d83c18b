"""`fashiontag clothing`: the real-photo pipeline (import, folds, train, TTA, stack, blend, report[, submit])."""

from __future__ import annotations

import argparse
import logging

from fashiontag.cli.common import add_config_args

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    from fashiontag.recipes.clothing import DEFAULT_SOURCES

    p = sub.add_parser(
        "clothing",
        help="real photos in class folders: import, 5 folds, train, predict with TTA, stack, blend, report",
        description="Imports the class folders (default: ../shared/data/clothing-small train + validation) into "
        "WORKDIR/train as the key garment_type_labels, then trains CONFIG on 5 folds, predicts with TTA, stacks "
        "an XGBoost head, blends both and writes the CV report. With --unlabelled DIR, DIR's photos are "
        "imported as a test root and the blend's validated submission is written. Finished steps are reused.",
    )
    p.add_argument("sources", nargs="*", help=f"class-folder trees to import (default: {' '.join(DEFAULT_SOURCES)})")
    p.add_argument("--workdir", default="data/clothing", help="where the imported dataset lives (data/clothing)")
    add_config_args(p, default="clothing_cpu")
    p.add_argument("--unlabelled", help="a folder of photos to predict and submit for (imported with --unlabelled)")
    p.add_argument("--out", help="submission file (default submissions/<exp>.csv)")
    p.add_argument("--report", default="reports/clothing_cv_report.md", help="the CV report to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fashiontag.recipes.clothing import run_clothing

    res = run_clothing(args.sources or None, args.workdir, args.config, args.overrides, args.unlabelled,
                       args.out, args.report)
    print(f"report: {res['report']}  blend: {res['blend']}  ({res['seconds'] / 60:.1f} min)")
    if res["submission"] is not None:
        print(f"submission (validated): {res['submission']}")
    return 0
