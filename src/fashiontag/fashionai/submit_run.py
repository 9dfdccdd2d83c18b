"""A run's test predictions -> a validated FashionAI submission covering every question."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pandas as pd

from fashiontag.core.errors import FashiontagError
from fashiontag.core.files import read_json, refuse_overwrite, replace_file
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


def _same_place(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return str(a) == str(b)


def check_test_root(key_dir: Path, test_root: str | Path) -> None:
    """test.csv must answer `test_root`: predict.json records the test root it was made for.

    A predict that failed on a new test root leaves the previous root's test.csv in place; if the two roots
    share image names, nothing else would notice. Runs without predict.json (stacks, blends) are not checked.
    """
    record_path = key_dir / "predict.json"
    if not record_path.is_file():
        return
    try:
        record = read_json(record_path)
    except (OSError, ValueError) as exc:
        raise RunError(f"{record_path}: unreadable ({exc}); run `fashiontag predict` again") from None
    made_for = record.get("test_root") if isinstance(record, dict) else None
    if made_for is None:
        log.warning("%s records no test root; cannot check that test.csv answers %s", record_path, test_root)
    elif not _same_place(made_for, test_root):
        raise RunError(f"{key_dir / 'test.csv'} predicts {made_for}, not {test_root} (see {record_path}); run "
                       f"`fashiontag predict --test {test_root}` first")


def collect_test(run_dir: str | Path, keys: list[str], attributes: dict[str, list[str]],
                 test_root: str | Path | None = None) -> pd.DataFrame:
    """Concatenate the run's test.csv of each key; refuse, naming them, keys without one."""
    run_dir = Path(run_dir)
    missing = {k: _missing_reason(run_dir / k) for k in keys if not (run_dir / k / "test.csv").exists()}
    if missing:
        listed = "; ".join(f"{k}: {why}" for k, why in missing.items())
        raise RunError(f"{run_dir} cannot answer every question: {len(missing)} key(s) have no test.csv "
                       f"({listed})")
    parts = []
    for key in keys:
        if test_root is not None:
            check_test_root(run_dir / key, test_root)
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
    refuse_overwrite(out, force)
    if not (test_root / QUESTION_CSV).is_file() and test_root.is_file():
        raise FashiontagError(f"{test_root} is a file; --test takes the test root folder holding {QUESTION_CSV}")
    attributes = read_attributes(test_root)
    questions = read_questions(test_root, attributes)
    if questions.empty:
        raise FashiontagError(f"{test_root / QUESTION_CSV} has no questions")
    keys = list(dict.fromkeys(questions["key"]))
    preds = collect_test(run_dir, keys, attributes, test_root)
    tmp = out.with_name(f".{out.name}.unvalidated")
    try:
        write_submission(tmp, questions, preds, attributes)
        problems = validate_submission(tmp, test_root / QUESTION_CSV, attributes)
        if problems:
            raise FashiontagError(f"submission failed validation ({len(problems)} problem(s)): "
                                  + "; ".join(problems[:5]))
        replace_file(tmp, out, exclusive=not force)  # a submit racing this one is not overwritten
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    log.info("wrote validated submission %s (%d rows, %d keys)", out, len(questions), len(keys))
    return out
