"""The end-to-end demo: generated data -> folds -> train -> predict (TTA) -> stack -> blend -> report
-> submit -> score. Each step is the same library call its own command makes; finished steps are reused,
so running the demo again resumes rather than starting over.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from fashiontag.core.config import load_config
from fashiontag.fashionai.format import LABEL_CSV, QUESTION_CSV, read_attributes
from fashiontag.fashionai.runs import list_keys

log = logging.getLogger(__name__)


def _have_all(run_dir: Path, name: str) -> bool:
    keys = list_keys(run_dir) if run_dir.is_dir() else []
    return bool(keys) and all((run_dir / k / name).exists() for k in keys)


def run_demo(workdir: str | Path = "data/demo", config: str = "demo", overrides: list[str] | None = None,
             submission: str | Path = "submissions/demo.csv", report: str | Path = "reports/cv_report.md",
             split: bool = False) -> pd.DataFrame:
    """Run the whole pipeline on generated data; returns the blend's score table (per key + overall).

    The demo rewrites only what it made itself: runs/<exp>*, the report and `submission`.
    """
    from fashiontag.fashionai.submission import score_submission
    from fashiontag.fashionai.submit_run import submit_run
    from fashiontag.synth.demo import make_demo_data

    workdir = Path(workdir)
    train_root, test_root = workdir / "train", workdir / "test"
    if not (train_root / LABEL_CSV).exists() or not (test_root / QUESTION_CSV).exists():
        log.info("demo step 1/8: generating demo data in %s", workdir)
        make_demo_data(workdir)
    cfg = load_config(config, overrides)
    cfg["data"]["test_root"] = str(test_root)
    if split:
        log.info("demo step 2/8: hanger-vs-worn split with a tiny person detector")
        _demo_split(train_root, cfg)
    blend_dir = train_predict_stack_blend(train_root, test_root, cfg, config, overrides, report, "demo", 3)
    log.info("demo step 8/8: submission and score")
    out = submit_run(blend_dir, test_root, submission, force=True)
    return score_submission(out, workdir / "test_answers.csv", read_attributes(test_root))


def train_predict_stack_blend(train_root: Path, test_root: Path | None, cfg: dict, config: str,
                              overrides: list[str] | None, report: str | Path, name: str, first_step: int) -> Path:
    """Train -> predict (TTA, OOF too) -> XGBoost stack -> CNN + XGBoost blend -> report; returns the blend.

    Finished training folds, predictions and stacks are reused, so a rerun resumes; the blend and the report
    are cheap and always rebuilt.
    """
    from fashiontag.recipes.separate import predict, train
    from fashiontag.report.cv import write_report
    from fashiontag.stack.blend import blend_runs
    from fashiontag.stack.runner import stack_run
    from fashiontag.train.runner import exp_name

    total = first_step + 4 + (test_root is not None)
    step = iter(range(first_step, total + 1))
    log.info("%s step %d/%d: training every key and fold (%s config)", name, next(step), total, config)
    exp_dir = train(train_root, "all", None, {**cfg, "exp": exp_name(cfg, config)}).run_dir
    have = "test.csv" if test_root is not None else "oof_tta.csv"
    log.info("%s step %d/%d: predicting with TTA (out-of-fold images%s)", name, next(step), total,
             " and the test root" if test_root is not None else "")
    if not _have_all(exp_dir, have):
        predict(exp_dir, test_root, overrides=overrides)
    log.info("%s step %d/%d: XGBoost head on penultimate features", name, next(step), total)
    xgb_dir = exp_dir.parent / f"{exp_dir.name}_xgb"
    if not _have_all(xgb_dir, "test.csv" if test_root is not None else "oof.csv"):
        stack_run(exp_dir, test_root, out_dir=xgb_dir, force=True, overrides=overrides)
    log.info("%s step %d/%d: blending CNN and XGBoost heads", name, next(step), total)
    blend_dir = exp_dir.parent / f"{exp_dir.name}_blend"
    blend_runs([exp_dir, xgb_dir], blend_dir, cfg, force=True)
    log.info("%s step %d/%d: cross-validation report -> %s", name, next(step), total, report)
    write_report([exp_dir, xgb_dir, blend_dir], report)  # replaces only a fashiontag report
    return blend_dir


def _demo_split(train_root: Path, cfg: dict) -> None:
    """The split with the tiny detector trained on generated person figures (no downloaded weights)."""
    from fashiontag.worn.runner import run_split
    from fashiontag.yolo.tiny_detector import train_tiny_person_detector

    weights = train_tiny_person_detector()
    run_split(train_root, {**cfg, "worn": {**cfg["worn"], "weights": str(weights)}})
