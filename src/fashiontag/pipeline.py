"""The end-to-end demo: generated data -> folds -> train -> predict (TTA) -> stack -> blend -> report
-> submit -> score. Each step is the same library call its own command makes; finished steps are reused,
so running the demo again resumes rather than starting over.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .config import load_config
from .data.fashionai import LABEL_CSV, QUESTION_CSV, read_attributes
from .runs import list_keys

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
    from .data.demo import make_demo_data
    from .ensemble import blend_runs
    from .infer.predict import predict_run
    from .infer.submission import submit_run
    from .report import write_report
    from .stack.runner import stack_run
    from .submit import score_submission
    from .train.runner import train_run

    workdir = Path(workdir)
    train_root, test_root = workdir / "train", workdir / "test"
    if not (train_root / LABEL_CSV).exists() or not (test_root / QUESTION_CSV).exists():
        log.info("demo step 1/8: generating demo data in %s", workdir)
        make_demo_data(workdir)
    cfg = load_config(config, overrides)
    cfg["data"]["test_root"] = str(test_root)
    runs = Path(cfg.get("runs_dir", "runs"))

    if split:
        log.info("demo step 2/8: hanger-vs-worn split with a tiny person detector")
        _demo_split(train_root, cfg)
    log.info("demo step 3/8: training every key and fold (%s config)", config)
    train_run(train_root, "all", None, cfg, config_arg=config)
    exp_dir = runs / cfg["exp"]

    log.info("demo step 4/8: predicting the test root with TTA (also on out-of-fold images)")
    if not _have_all(exp_dir, "test.csv"):
        predict_run(exp_dir, test_root, overrides=overrides)
    log.info("demo step 5/8: XGBoost head on penultimate features")
    xgb_dir = exp_dir.parent / f"{exp_dir.name}_xgb"
    if not _have_all(xgb_dir, "test.csv"):
        stack_run(exp_dir, test_root, out_dir=xgb_dir, force=True, overrides=overrides)
    log.info("demo step 6/8: blending CNN and XGBoost heads")
    blend_dir = exp_dir.parent / f"{exp_dir.name}_blend"
    blend_runs([exp_dir, xgb_dir], blend_dir, cfg, force=True)
    log.info("demo step 7/8: cross-validation report")
    write_report([exp_dir, xgb_dir, blend_dir], report)
    log.info("demo step 8/8: submission and score")
    out = submit_run(blend_dir, test_root, submission, force=True)
    return score_submission(out, workdir / "test_answers.csv", read_attributes(test_root))


def _demo_split(train_root: Path, cfg: dict) -> None:
    """The split with the tiny detector trained on generated person figures (no downloaded weights)."""
    from .split.runner import run_split
    from .split.tiny_detector import train_tiny_person_detector

    weights = train_tiny_person_detector()
    run_split(train_root, {**cfg, "split": {**cfg["split"], "weights": str(weights)}})
