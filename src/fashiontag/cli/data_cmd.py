"""Data commands: import-folders, folds, check-data."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fashiontag.cli.common import add_config_args, add_skip_arg

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-folders", help="import class folders (SRC/<class>/*.jpg) into the FashionAI layout",
        description="Import one or more class-folder trees (class names merged) into DST with one key: "
                    "DST/Images/<key>/, Annotations/label.csv (or Tests/question.csv with --unlabelled) and "
                    "Annotations/attributes.csv (value order = sorted class names).",
    )
    p.add_argument("src", nargs="+", metavar="SRC", help="source folder(s): SRC/<class>/*.jpg (or flat, --unlabelled)")
    p.add_argument("dst", metavar="DST", help="destination dataset root")
    p.add_argument("--attr", required=True, metavar="KEY", help="attribute key, e.g. garment_type (_labels is added)")
    p.add_argument("--unlabelled", action="store_true",
                   help="write Tests/question.csv; SRC may be a flat folder of images")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--link", action="store_true", help="hard-link unchanged JPEGs instead of copying")
    mode.add_argument("--copy", action="store_true", help="copy files (the default)")
    p.add_argument("--values-from", metavar="ROOT", default=None,
                   help="take the key's value order from ROOT's attributes (e.g. the training import)")
    p.add_argument("--force", action="store_true", help="replace a dataset already in DST")
    add_skip_arg(p)
    p.set_defaults(func=cmd_import_folders)

    p = sub.add_parser(
        "folds", help="write folds/<dataset>.csv (stratified by value, duplicates grouped); written once",
        description="Assign every labelled row a fold with StratifiedGroupKFold (groups = image md5). "
                    "Refuses to overwrite an existing fold file unless --force.",
    )
    p.add_argument("--data", default=None, help="training root (default: config data.root)")
    p.add_argument("--k", type=int, default=None, help="number of folds (default: config data.n_folds = 5)")
    p.add_argument("--seed", type=int, default=None, help="fold seed (default: config data.fold_seed = 0)")
    p.add_argument("--out-dir", default=None, help="folder of fold files (default: config data.folds_dir)")
    p.add_argument("--force", action="store_true", help="replace an existing fold file")
    add_config_args(p)
    p.set_defaults(func=cmd_folds)

    p = sub.add_parser(
        "check-data", help="read label.csv/question.csv and decode every listed image",
        description="Stops at the first problem with a message naming the file and line; with --skip-bad "
                    "checks everything, writes DATA/check_skips.csv and exits 1 if anything was bad.",
    )
    p.add_argument("data", help="dataset root (Annotations/label.csv and/or Tests/question.csv)")
    p.add_argument("--test", default=None, help="test root whose Tests/question.csv is also checked")
    add_skip_arg(p)
    p.set_defaults(func=cmd_check_data)


def cmd_import_folders(args: argparse.Namespace) -> int:
    from fashiontag.data.import_folders import import_folders

    result = import_folders(
        args.src, args.dst, args.attr, unlabelled=args.unlabelled, link=args.link, skip_bad=args.skip_bad,
        force=args.force, values_from=args.values_from,
    )
    kind = "labelled" if result.labelled else "unlabelled"
    print(f"{result.root}: {result.n_images} {kind} images of {result.key} ({len(result.values)} values), "
          f"{result.n_converted} converted, {result.n_skipped} skipped")
    return 0


def cmd_folds(args: argparse.Namespace) -> int:
    from fashiontag.core.config import load_config
    from fashiontag.core.files import read_csv_checked
    from fashiontag.data.folds import check_n_folds, check_overwrite, folds_path, make_folds, write_folds
    from fashiontag.fashionai.format import load_dataset

    cfg = load_config(args.config, args.overrides)
    data = cfg["data"]
    root = Path(args.data or data["root"])
    k = args.k if args.k is not None else data["n_folds"]
    seed = args.seed if args.seed is not None else data["fold_seed"]
    check_n_folds(k)
    path = folds_path(root, args.out_dir or data["folds_dir"])
    check_overwrite(path, args.force)  # before any hashing: refuse early
    dataset = load_dataset(root)
    folds = make_folds(root, dataset.labels, k=k, seed=seed)
    write_folds(path, folds, force=args.force)  # exclusive without --force: a concurrent run cannot interleave
    written = read_csv_checked(path, {"image": str, "key": str}, what="fold file")  # report what the file holds
    print(f"{path}: {len(written)} rows, {written['key'].nunique()} keys, {written['fold'].nunique()} folds "
          f"(seed {seed})")
    return 0


def cmd_check_data(args: argparse.Namespace) -> int:
    from fashiontag.core.errors import DataError
    from fashiontag.core.files import remove_file
    from fashiontag.core.skips import SkipReport
    from fashiontag.data.images import verify_images
    from fashiontag.fashionai.format import (
        ATTRIBUTES_CSV,
        LABEL_CSV,
        QUESTION_CSV,
        read_attributes,
        read_labels,
        read_questions,
    )

    data = Path(args.data)
    for root in [data] + ([Path(args.test)] if args.test else []):
        if root.exists() and not root.is_dir():
            raise DataError(root, "is a file; check-data takes dataset root folders")
    report = data / "check_skips.csv"
    skips = SkipReport(skip=args.skip_bad)
    checked = []
    if (data / LABEL_CSV).exists():
        labels = read_labels(data, read_attributes(data), skips)
        ok = verify_images(data, labels, skips, source=data / LABEL_CSV)
        checked.append(f"{len(ok)} of {len(labels)} labelled images")
    for root in [data] + ([Path(args.test)] if args.test else []):
        if (root / QUESTION_CSV).exists() or root != data:
            # A test root without its own attributes.csv shares the training root's keys.
            attributes = read_attributes(root if (root / ATTRIBUTES_CSV).exists() else data)
            questions = read_questions(root, attributes, skips)
            ok = verify_images(root, questions, skips, source=root / QUESTION_CSV)
            checked.append(f"{len(ok)} of {len(questions)} question images in {root}")
    if not checked:
        raise DataError(data, f"nothing to check: no {LABEL_CSV} or {QUESTION_CSV}")
    if len(skips):
        skips.write(report)  # replaces an earlier report in one step
    else:
        remove_file(report)  # a stale report from an earlier check would mislead
    status = "OK" if not len(skips) else f"{len(skips)} problems (see {report})"
    print(f"{status}: " + "; ".join(checked))
    return 1 if len(skips) else 0
