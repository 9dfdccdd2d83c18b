"""Evaluation commands: score a submission against answers, validate a submission against questions."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fashiontag.cli.common import format_scores

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score", help="score a FashionAI submission against an answers file (label.csv format)",
        description="Per-key AP (official FashionAI metric), BasicPrecision, accuracy and log loss, then "
                    "totals (unweighted means over keys).",
    )
    p.add_argument("submission", help="submission CSV (image,key,p;p;...)")
    p.add_argument("--answers", required=True, help="answers in label.csv format (image,key,label)")
    p.add_argument("--attributes", metavar="ROOT", default=None,
                   help="dataset root whose Annotations/attributes.csv names the keys' values (default: the "
                        "answers file's grandparent if it has one, else the official keys)")
    p.add_argument("--json", metavar="OUT", default=None,
                   help="also write the scores as JSON (an existing OUT only with --force; never the inputs)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json OUT")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser(
        "validate-submission", help="check a submission's rows, order and probabilities against question.csv",
        description="Prints OK with the row count, or every problem with its line (exit 1).",
    )
    p.add_argument("submission", help="submission CSV")
    p.add_argument("--questions", required=True, help="the test's Tests/question.csv")
    p.add_argument("--attributes", metavar="ROOT", default=None,
                   help="dataset root with Annotations/attributes.csv (default: the question file's root)")
    p.set_defaults(func=cmd_validate)


def attributes_near(csv_path: str | Path, explicit_root: str | Path | None) -> dict[str, list[str]]:
    """Key -> values for a CSV: --attributes ROOT, else the CSV's grandparent root if it has
    Annotations/attributes.csv (ROOT/Annotations/x.csv, ROOT/Tests/x.csv), else the official keys."""
    from fashiontag.core.errors import DataError
    from fashiontag.fashionai.format import ATTRIBUTES_CSV, read_attributes

    if explicit_root is not None:
        if not (Path(explicit_root) / ATTRIBUTES_CSV).exists():
            raise DataError(Path(explicit_root) / ATTRIBUTES_CSV, "not found (--attributes names a dataset root)")
        return read_attributes(explicit_root)
    root = Path(csv_path).resolve().parent.parent
    if (root / ATTRIBUTES_CSV).exists():
        log.info("value names from %s", root / ATTRIBUTES_CSV)
    return read_attributes(root)  # the official keys alone when the file is absent


def _check_json_out(out: Path, inputs: list[str], force: bool) -> None:
    """--json never replaces an input (the submission being scored, the answers), even with --force."""
    from fashiontag.core.errors import FashiontagError
    from fashiontag.core.files import refuse_overwrite

    for item in inputs:
        same = out.resolve() == Path(item).resolve()
        if not same and out.exists() and Path(item).exists():
            same = out.samefile(item)
        if same:
            raise FashiontagError(f"--json {out} is the file being scored ({item}); give another file name")
    refuse_overwrite(out, force)


def cmd_score(args: argparse.Namespace) -> int:
    from fashiontag.core.files import atomic_write_json
    from fashiontag.fashionai.submission import score_submission

    if args.json:  # before scoring: a refusal costs nothing
        _check_json_out(Path(args.json), [args.submission, args.answers], args.force)
    attributes = attributes_near(args.answers, args.attributes)
    table = score_submission(args.submission, args.answers, attributes)
    print(format_scores(table))
    if args.json:
        rows = table.to_dict(orient="records")
        atomic_write_json(args.json, {"submission": str(args.submission), "answers": str(args.answers),
                                      "keys": rows[:-1], "overall": rows[-1]}, exclusive=not args.force)
        log.info("scores written to %s", args.json)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from fashiontag.core.files import read_text_checked
    from fashiontag.fashionai.submission import validate_submission

    attributes = attributes_near(args.questions, args.attributes)
    problems = validate_submission(args.submission, args.questions, attributes)
    if problems:
        print(f"{args.submission}: {len(problems)} problem(s)")
        for problem in problems:
            print(f"  {problem}")
        return 1
    n_rows = sum(1 for line in read_text_checked(args.submission).splitlines() if line.strip())
    print(f"OK: {args.submission} has {n_rows} rows matching {args.questions}")
    return 0
