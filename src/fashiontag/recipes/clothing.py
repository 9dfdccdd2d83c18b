"""`fashiontag clothing`: the real-photo pipeline on class folders (clothing-small by default).

Import the class folders once into the FashionAI layout (one key, `garment_type_labels`), then train and
predict (TTA) the config's run and each of its `ensemble.members` (recipes/members.py), the optional XGBoost
stack, the blend and the report, into runs/<exp>, runs/<exp>_<member>, runs/<exp>_xgb and runs/<exp>_blend.
With `unlabelled`, a folder of unlabelled photos is imported as a test root too, and the blend's validated
submission is written for it. Every step reuses what a previous call finished.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fashiontag.core.config import load_config
from fashiontag.fashionai.format import LABEL_CSV, QUESTION_CSV
from fashiontag.recipes.members import train_predict_blend

log = logging.getLogger(__name__)

KEY = "garment_type_labels"
DEFAULT_SOURCES = ("../shared/data/clothing-small/train", "../shared/data/clothing-small/validation")


def run_clothing(sources: list[str | Path] | None = None, workdir: str | Path = "data/clothing",
                 config: str = "clothing_cpu", overrides: list[str] | None = None,
                 unlabelled: str | Path | None = None, submission: str | Path | None = None,
                 report: str | Path = "reports/clothing_cv_report.md") -> dict:
    """Run the whole real-photo pipeline; returns {blend, report, submission, seconds}."""
    from fashiontag.data.import_folders import import_folders

    t0 = time.time()
    workdir = Path(workdir)
    train_root = workdir / "train"
    cfg = load_config(config, overrides)
    # import(s), one step per member, the stack, the blend + report, the submission
    total = 1 + (unlabelled is not None) * 2 + 1 + len(cfg["ensemble"]["members"]) + bool(cfg["ensemble"]["stack"]) + 1
    if not (train_root / LABEL_CSV).exists():
        srcs = [Path(s) for s in (sources or DEFAULT_SOURCES)]
        log.info("clothing step 1/%d: importing %s into %s", total, ", ".join(map(str, srcs)), train_root)
        import_folders(srcs, train_root, KEY)
    else:
        log.info("clothing step 1/%d: %s already imported", total, train_root)
    test_root = None
    if unlabelled is not None:
        test_root = workdir / "test"
        if not (test_root / QUESTION_CSV).exists():
            log.info("clothing step 2/%d: importing unlabelled photos %s into %s", total, unlabelled, test_root)
            import_folders([Path(unlabelled)], test_root, KEY, unlabelled=True,
                           values_from=train_root)
        else:
            log.info("clothing step 2/%d: %s already imported", total, test_root)
    first = 3 if unlabelled is not None else 2
    blend = train_predict_blend(train_root, test_root, cfg, config, overrides, report, "clothing", first)
    out = None
    if test_root is not None:
        from fashiontag.fashionai.submit_run import submit_run
        from fashiontag.train.runner import exp_name

        out = Path(submission or f"submissions/{exp_name(cfg, config)}.csv")
        log.info("clothing step %d/%d: submission for %s -> %s", total, total, test_root, out)
        submit_run(blend, test_root, out, force=True)
    seconds = time.time() - t0
    log.info("clothing pipeline done in %.0f s: blend %s, report %s", seconds, blend, report)
    return {"blend": blend, "report": Path(report), "submission": out, "seconds": seconds}
