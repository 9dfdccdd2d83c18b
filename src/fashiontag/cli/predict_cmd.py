"""`fashiontag predict`: fold-averaged test predictions of a run, with TTA (also on OOF images)."""

from __future__ import annotations

import argparse
import logging

from fashiontag.cli.common import select_keys

log = logging.getLogger("fashiontag.predict")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="every fold of EXP predicts TEST's questions (TTA from config): runs/<exp>/<key>/test.csv",
        description="Uses each key's own config.yaml (from training) plus --set overrides, e.g. "
        "--set tta.flips_only=true, tta.n_random=2, tta.mode=max, tta.enabled=false, tta.on_oof=false. "
        "With tta.on_oof the OOF images are predicted with TTA too: fold_k/oof_tta.csv, oof_tta.csv, cv_tta.json.",
    )
    p.add_argument("--exp", required=True, help="run name under runs/ (or a run path)")
    p.add_argument("--test", required=True, help="test root holding Tests/question.csv and the images")
    p.add_argument("--cat", default="all", help="keys: all (every trained key) or a comma list (skirt_length,...)")
    p.add_argument("--runs-dir", default="runs", help="where run names are looked up")
    p.add_argument("--fallback", choices=["uniform"], default=None,
                   help="give unreadable test images uniform probabilities instead of stopping")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override the run's config, e.g. --set tta.n_random=2 --set train.device=cpu (repeatable)",
    )
    p.set_defaults(func=run_predict_cmd)


def run_predict_cmd(args: argparse.Namespace) -> int:
    from fashiontag.fashionai.runs import resolve_run
    from fashiontag.recipes.separate import predict

    run = resolve_run(args.exp, args.runs_dir)
    results = predict(run, args.test, keys=select_keys(run, args.cat), fallback=args.fallback,
                          overrides=args.overrides)
    for key, rec in results.items():
        tta = rec.get("cv_tta")
        log.info("%s: %d test rows predicted by folds %s%s", key, rec["n_test"], rec["folds"],
                 f"; cv with TTA mAP {tta['mAP']:.4f}" if tta else "")
    return 0
