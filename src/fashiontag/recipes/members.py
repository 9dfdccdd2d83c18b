"""An ensemble of trained runs for `fashiontag clothing`: the config's own run plus `ensemble.members`.

Each member is another config file (e.g. the same recipe on another EfficientNet-Lite body) trained on the
same folds, then predicted with TTA (out-of-fold and the test root); with `ensemble.stack` the XGBoost head
on the first run's penultimate features joins them; `ensemble.method` blends them all into `<exp>_blend`.
A member's run is `<exp>_<suffix>`, the suffix being its config name after the part it shares with this
config's name, cut at an underscore (clothing_cpu + clothing_cpu_lite1 -> clothing_cpu_lite1, clothing_cpu_fast +
clothing_cpu_lite2 -> clothing_cpu_fast_lite2); the command's --set overrides apply to every
member except `exp`. Finished folds, predictions and stacks are reused, so a rerun resumes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fashiontag.core.config import load_config
from fashiontag.fashionai.runs import list_keys

log = logging.getLogger(__name__)


def _have_all(run_dir: Path, name: str) -> bool:
    keys = list_keys(run_dir) if run_dir.is_dir() else []
    return bool(keys) and all((run_dir / k / name).exists() for k in keys)


def member_configs(cfg: dict, config: str, overrides: list[str] | None) -> list[tuple[dict, list[str]]]:
    """(config with its run name as `exp`, its overrides) for the config itself and each of its members."""
    from fashiontag.train.runner import exp_name

    main = exp_name(cfg, config)
    stem = Path(config).stem
    shared = [o for o in overrides or [] if o.split("=", 1)[0].strip() != "exp"]
    out = [({**cfg, "exp": main}, list(overrides or []))]
    for member in cfg["ensemble"]["members"]:
        name = Path(member).stem
        # What the member's name adds after the part it shares with this config's (up to an underscore).
        shared_part = os.path.commonprefix([stem + "_", name])
        suffix = name[shared_part.rfind("_") + 1:] or name
        sets = [*shared, f"exp={main}_{suffix}", "ensemble.members=[]", "ensemble.stack=false"]
        out.append((load_config(member, sets), sets))
    names = [c["exp"] for c, _ in out]
    if len(set(names)) != len(names):
        from fashiontag.core.errors import ConfigError

        raise ConfigError(f"ensemble.members of {config}: two members get the same run name ({names})")
    return out


def train_predict_blend(train_root: Path, test_root: Path | None, cfg: dict, config: str,
                        overrides: list[str] | None, report: str | Path, name: str, first_step: int) -> Path:
    """Train + predict every member, the optional XGBoost stack, the blend and the report; returns the run
    whose test.csv is the answer (the blend, or the only run)."""
    from fashiontag.recipes.separate import predict, train
    from fashiontag.report.cv import write_report
    from fashiontag.stack.blend import blend_runs
    from fashiontag.stack.runner import stack_run

    members = member_configs(cfg, config, overrides)
    stack = bool(cfg["ensemble"]["stack"])
    if stack:  # refused now rather than after every member has trained
        from fashiontag.stack.runner import require_shared_body

        require_shared_body(cfg, Path(cfg["runs_dir"]) / members[0][0]["exp"])
    total = first_step + len(members) + stack + (test_root is not None)  # the caller submits last
    step = iter(range(first_step, total + 1))
    have = "test.csv" if test_root is not None else "oof_tta.csv"
    runs: list[Path] = []
    for mcfg, sets in members:
        log.info("%s step %d/%d: member %s (%s, %s): train every fold, predict with TTA", name, next(step), total,
                 mcfg["exp"], mcfg["model"]["backbone"], "x".join(map(str, mcfg["train"]["stages"])))
        exp_dir = train(train_root, "all", None, mcfg).run_dir
        if not _have_all(exp_dir, have):
            predict(exp_dir, test_root, overrides=sets)
        runs.append(exp_dir)
    if stack:
        log.info("%s step %d/%d: XGBoost head on %s's penultimate features", name, next(step), total, runs[0].name)
        xgb_dir = runs[0].parent / f"{runs[0].name}_xgb"
        if not _have_all(xgb_dir, "test.csv" if test_root is not None else "oof.csv"):
            stack_run(runs[0], test_root, out_dir=xgb_dir, force=True, overrides=overrides)
        runs.append(xgb_dir)
    answer = runs[0]
    if len(runs) > 1:
        answer = runs[0].parent / f"{runs[0].name}_blend"
        blend_runs(runs, answer, cfg, force=True)
    log.info("%s step %d/%d: cross-validation report -> %s", name, next(step), total, report)
    write_report([*runs, answer] if answer not in runs else runs, report)  # replaces only a fashiontag report
    return answer
