"""A run's test predictions -> a validated FashionAI submission covering every question."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import pandas as pd

from fashiontag.core.errors import FashiontagError
from fashiontag.fashionai.format import QUESTION_CSV, read_attributes, read_questions
from fashiontag.fashionai.probs import n_probs
from fashiontag.fashionai.runs import RunError, fold_dirs, load_test
from fashiontag.fashionai.submission import validate_submission, write_submission

log = logging.getLogger(__name__)


def _missing_reason(key_dir: Path) -> str:
    """Why a key has no test.csv, and the command that makes it."""
    if not key_dir.is_dir():
        return "no trained model (`fashiontag train --cat ...`)"
    if fold_dirs(key_dir):
        return "trained but not predicted (`fashiontag predict`)"
    return "no test.csv (re-run the command that made this run: stack / ensemble)"


def collect_test(run_dir: str | Path, keys: list[str], attributes: dict[str, list[str]]) -> pd.DataFrame:
    """Concatenate the run's test.csv of each key; refuse, naming them, keys without one."""
    run_dir = Path(run_dir)
    missing = {k: _missing_reason(run_dir / k) for k in keys if not (run_dir / k / "test.csv").exists()}
    if missing:
        listed = "; ".join(f"{k}: {why}" for k, why in missing.items())
        raise RunError(f"{run_dir} cannot answer every question: {len(missing)} key(s) have no test.csv "
                       f"({listed})")
    parts = []
    for key in keys:
        table = load_test(run_dir / key)
        n = n_probs(table)
        if n != len(attributes[key]):
            raise RunError(f"{run_dir / key / 'test.csv'} has {n} values per row but {key} has "
                           f"{len(attributes[key])} in the test set")
        parts.append(table.assign(key=key))
    return pd.concat(parts, ignore_index=True)


def submit_run(run_dir: str | Path, test_root: str | Path, out: str | Path, force: bool = False) -> Path:
    """Write `out` from `run_dir`'s test.csv files for `test_root`'s questions, then validate it.

    The file is written under a temporary name and moved to `out` only when valid, so a failed
    submission never replaces a good one.
    """
    out, test_root = Path(out), Path(test_root)
    if out.exists() and not force:
        raise FashiontagError(f"{out} already exists; pass --force to overwrite it")
    attributes = read_attributes(test_root)
    questions = read_questions(test_root, attributes)
    if questions.empty:
        raise FashiontagError(f"{test_root / QUESTION_CSV} has no questions")
    keys = list(dict.fromkeys(questions["key"]))
    preds = collect_test(run_dir, keys, attributes)
    tmp = out.with_name(f".{out.name}.unvalidated")
    try:
        write_submission(tmp, questions, preds, attributes)
        problems = validate_submission(tmp, test_root / QUESTION_CSV, attributes)
        if problems:
            raise FashiontagError(f"submission failed validation ({len(problems)} problem(s)): "
                                  + "; ".join(problems[:5]))
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    log.info("wrote validated submission %s (%d rows, %d keys)", out, len(questions), len(keys))
    return out
