"""`fashiontag stack`: XGBoost head on the penultimate features of a run's fold models."""

from __future__ import annotations

import argparse
import logging

from fashiontag.cli.common import select_keys

log = logging.getLogger("fashiontag.stack")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stack",
        help="XGBoost head per fold on pooled penultimate features (OOF): runs/<exp>_xgb/<key>/...",
        description="Features of fold k's OOF rows come from fold k's CNN; head k trains on the other folds' "
        "rows and predicts fold k and (with fold k's CNN features) the test rows, averaged over folds. "
        "Settings: stack.* (pool, n_estimators, max_depth, learning_rate, early_stopping_rounds, inner_valid, colsample_bytree, max_bin).",
    )
    p.add_argument("--exp", required=True, help="CNN run name under runs/ (or a run path)")
    p.add_argument("--test", default=None, help="test root (Tests/question.csv); omit for OOF only")
    p.add_argument("--cat", default="all", help="keys: all or a comma list")
    p.add_argument("--out", default=None, help="stack run directory (default: runs/<exp>_xgb)")
    p.add_argument("--runs-dir", default="runs", help="where run names are looked up")
    p.add_argument("--fallback", choices=["uniform"], default=None,
                   help="give unreadable test images uniform probabilities instead of stopping")
    p.add_argument("--force", action="store_true", help="rebuild an existing stack (cached features are reused)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override the run's config, e.g. --set stack.pool=[avg,max] (repeatable)")
    p.set_defaults(func=run_stack_cmd)


def run_stack_cmd(args: argparse.Namespace) -> int:
    from fashiontag.fashionai.runs import resolve_run
    from fashiontag.stack.runner import stack_run

    run = resolve_run(args.exp, args.runs_dir)
    results = stack_run(run, args.test, out_dir=args.out, keys=select_keys(run, args.cat), force=args.force,
                        fallback=args.fallback, overrides=args.overrides)
    for key, cv in results.items():
        log.info("%s: stack mAP %.4f, log loss %.4f", key, cv["mAP"], cv["log_loss"])
    return 0
