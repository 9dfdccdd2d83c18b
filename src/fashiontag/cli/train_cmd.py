"""`fashiontag train`: per-key, per-fold fastai training (the library: fashiontag.train.runner)."""

from __future__ import annotations

import argparse
import json
import logging

from fashiontag.cli.common import add_config_args, add_skip_arg

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train keys x folds into runs/<exp>/<key>/fold_<k>/ (resumable)",
        description="Train one fastai learner per key and fold with the recipe in the config (LR finder, "
                    "frozen then unfrozen stages, SGDR or one-cycle, progressive resizing). Finished folds are "
                    "skipped and interrupted ones resume from their last epoch; then oof.csv and cv.json "
                    "are written per key.",
    )
    p.add_argument("--data", default=None, help="training root in the FashionAI layout (default: config data.root)")
    p.add_argument("--cat", default="all", help="key, short name (skirt_length), comma list, or all (default)")
    p.add_argument("--folds", default="all", help="fold numbers, e.g. 0 or 0,2, or all (default)")
    p.add_argument("--exp", default=None, help="run name under runs/ (default: the config file's stem)")
    p.add_argument("--gpus", type=int, default=1,
                   help="run key x fold jobs in parallel, one worker process per GPU (CPU: always serial)")
    p.add_argument("--force", action="store_true", help="retrain folds that are already done (train.force)")
    add_config_args(p)
    add_skip_arg(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from fashiontag.core.config import load_config
    from fashiontag.core.names import check_name

    overrides = list(args.overrides)
    if args.force:
        overrides.append("train.force=true")
    if args.skip_bad:
        overrides.append("data.skip_bad=true")
    if args.exp:
        overrides.append(f"exp={check_name(args.exp, '--exp')}")  # it becomes runs/<exp>/
    # The config is checked before the training stack (torch, fastai) is imported: a bad value fails fast.
    cfg = load_config(args.config, overrides)
    from fashiontag.core.devices import resolve_device

    resolve_device(cfg["train"]["device"])  # a device this machine cannot use fails before any data is read
    from fashiontag.recipes.separate import train
    from fashiontag.train.runner import exp_name

    cfg["exp"] = exp_name(cfg, args.config)  # --exp, else the config file's stem
    result = train(args.data or cfg["data"]["root"], args.cat, args.folds, cfg, gpus=args.gpus)
    for key, cv in result.cv.items():
        if cv is not None:
            summary = {k: cv[k] for k in ("n", "mAP", "basic_precision", "accuracy", "log_loss", "complete")}
            log.info("%s: %s", key, json.dumps(summary))
    return 0
