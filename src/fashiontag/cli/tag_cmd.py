"""`fashiontag tag`: top values and probabilities of every key of a run, for images or folders."""

from __future__ import annotations

import argparse
import sys

from fashiontag.cli.common import add_skip_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tag",
        help="tag images with a run's keys: top values + probabilities (table, JSON or CSV)",
        description="Every image (folders are searched recursively) is predicted by every fold of every key of "
        "RUN (fold-averaged). Unreadable images are counted and stop the command unless --skip-bad.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR")
    p.add_argument("--run", required=True, help="CNN run name under runs/ (or a run path)")
    p.add_argument("--top", type=int, default=3, help="values listed per key (default 3)")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--tta", action="store_true", help="test-time augmentation from the run's tta config")
    p.add_argument("--out", default=None, help="write here instead of stdout (never overwritten without --force)")
    p.add_argument("--force", action="store_true", help="overwrite OUT")
    p.add_argument("--runs-dir", default="runs", help="where run names are looked up")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override the run's config, e.g. --set train.device=cpu --set train.batch_size=32")
    add_skip_arg(p)
    p.set_defaults(func=run_tag_cmd)


def run_tag_cmd(args: argparse.Namespace) -> int:
    from fashiontag.core.errors import FashiontagError
    from fashiontag.core.files import atomic_write_text, refuse_overwrite
    from fashiontag.fashionai.runs import resolve_run

    if args.top < 1:
        raise FashiontagError("--top must be at least 1")
    out = refuse_overwrite(args.out, args.force) if args.out else None  # before the models load
    run = resolve_run(args.run, args.runs_dir)
    from fashiontag.infer.tag import format_tags, tag_images
    df, skips = tag_images(args.images, run, top=args.top, tta=args.tta, skip_bad=args.skip_bad,
                           overrides=args.overrides)
    text = format_tags(df, args.format)
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out, text, exclusive=not args.force)
        skips.write(out.with_name(out.name + ".skipped.csv"))
    return 0
