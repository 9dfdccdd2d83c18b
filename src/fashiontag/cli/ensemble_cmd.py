"""`fashiontag ensemble`: blend runs from their out-of-fold (and test) files into a new run."""

from __future__ import annotations

import argparse
import logging

from fashiontag.cli.common import add_config_args

log = logging.getLogger("fashiontag.stack.blend")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ensemble",
        help="blend runs from their OOF files: runs/<exp>/<key>/{oof,test}.csv, cv.json, weights.json",
        description="Blend runs key by key. --set ensemble.method=mean|weighted|geometric|weighted_geometric|rank; "
        "the weighted ones fit weights on OOF by log loss inside folds (honest OOF) and on all rows for test.",
    )
    p.add_argument("--runs", nargs="+", required=True, help="run names under runs_dir, or run paths")
    p.add_argument("--exp", default=None, help="name of the blend run (default: blend_<method>_<runs>)")
    p.add_argument("--cat", default="all", help="keys to blend: all (those every run has) or a comma list")
    p.add_argument("--plain-oof", action="store_true",
                   help="blend oof.csv even where oof_tta.csv exists (default: the TTA OOF, matching test.csv)")
    p.add_argument("--force", action="store_true", help="replace an existing blend of that name")
    add_config_args(p)
    p.set_defaults(func=run_ensemble_cmd)


def run_ensemble_cmd(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fashiontag.core.config import load_config
    from fashiontag.core.names import check_name
    from fashiontag.fashionai.keys import resolve_key
    from fashiontag.fashionai.runs import list_keys, resolve_run
    from fashiontag.stack.blend import blend_runs

    if args.exp:
        check_name(args.exp, "--exp")  # it becomes runs/<exp>/
    cfg = load_config(args.config, args.overrides)
    runs_dir = Path(cfg["runs_dir"])
    run_dirs = [resolve_run(r, runs_dir) for r in args.runs]
    keys = None
    if args.cat != "all":
        known = {k: [] for r in run_dirs for k in list_keys(r)}
        keys = [resolve_key(c.strip(), known) for c in args.cat.split(",") if c.strip()]
    name = args.exp or cfg["exp"] or f"blend_{cfg['ensemble']['method']}_" + "_".join(r.name for r in run_dirs)
    results = blend_runs(run_dirs, runs_dir / name, cfg, keys=keys, force=args.force, use_tta=not args.plain_oof)
    for key, cv in results.items():
        log.info("%s %s: mAP %.4f, BasicPrecision %.4f, log loss %.4f", name, key, cv["mAP"],
                 cv["basic_precision"], cv["log_loss"])
    return 0
