"""`fashiontag submit`: a run's test predictions -> a validated FashionAI submission CSV."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "submit",
        help="write a validated FashionAI CSV from RUN's test.csv files for TEST's questions",
        description="Every key in TEST/Tests/question.csv needs RUN/<key>/test.csv (made by predict, stack or "
        "ensemble); missing keys are named. OUT is never overwritten without --force.",
    )
    p.add_argument("--run", required=True, help="run name under runs/ or a run path")
    p.add_argument("--test", required=True, help="test root holding Tests/question.csv")
    p.add_argument("--out", default=None, help="CSV to write (default: submissions/<run>.csv)")
    p.add_argument("--runs-dir", default="runs", help="where run names are looked up (default: runs)")
    p.add_argument("--force", action="store_true", help="overwrite an existing OUT")
    p.set_defaults(func=run_submit_cmd)


def run_submit_cmd(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fashiontag.fashionai.runs import resolve_run
    from fashiontag.fashionai.submit_run import submit_run

    run = resolve_run(args.run, args.runs_dir)
    out = Path(args.out) if args.out else Path("submissions") / f"{run.name}.csv"
    submit_run(run, args.test, out, force=args.force)
    return 0
