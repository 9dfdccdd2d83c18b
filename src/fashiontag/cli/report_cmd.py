"""`fashiontag report`: the cross-validation report of runs and blends (markdown + PNGs + JSON)."""

from __future__ import annotations

import argparse

from fashiontag.cli.common import add_config_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="CV report of every run/blend side by side: reports/cv_report.md with confusion PNGs",
        description="Scores are recomputed from each run's oof.csv / oof_tta.csv with the official metric.",
    )
    p.add_argument("--runs", nargs="+", default=None, help="run names or paths (default: every run in runs_dir)")
    p.add_argument("--out", default=None, help="markdown file (default: report.out, reports/cv_report.md)")
    p.add_argument("--no-plots", action="store_true", help="skip the confusion-matrix PNGs")
    p.add_argument("--force", action="store_true", help="overwrite OUT even if it is not a fashiontag report")
    add_config_args(p)
    p.set_defaults(func=run_report_cmd)


def run_report_cmd(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fashiontag.core.config import load_config
    from fashiontag.fashionai.runs import resolve_run
    from fashiontag.report.cv import discover_runs, write_report

    cfg = load_config(args.config, args.overrides)
    runs_dir = Path(cfg["runs_dir"])
    runs = [resolve_run(r, runs_dir) for r in args.runs] if args.runs else discover_runs(runs_dir)
    write_report(runs, args.out or cfg["report"]["out"], force=args.force, plots=not args.no_plots)
    return 0
