"""`fashiontag make-demo-data DST`: a generated FashionAI-layout dataset where the attribute is geometry."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "make-demo-data",
        help="generate a small FashionAI-layout dataset (skirt and sleeve length drawn as geometry)",
        description="Writes DST/train (Annotations/label.csv), DST/test (Tests/question.csv), "
        "DST/test_answers.csv, DST/truth.csv (worn flag, person and garment boxes) and DST/demo.json. "
        "The same seed gives byte-identical files.",
    )
    p.add_argument("dst", type=Path, help="output folder (must be empty or absent unless --force)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--n-train", type=int, default=240, help="training images per key (default 240)")
    p.add_argument("--n-test", type=int, default=60, help="test images per key (default 60)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    p.add_argument("--keys", default="skirt_length,sleeve_length",
                   help="comma list of keys to generate (default skirt_length,sleeve_length)")
    p.add_argument("--force", action="store_true", help="replace the generated outputs in a non-empty DST")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fashiontag.fashionai.keys import resolve_keys
    from fashiontag.synth.demo import DEMO_KEYS, make_demo_data

    keys = resolve_keys(args.keys, {k: [] for k in DEMO_KEYS})
    make_demo_data(args.dst, seed=args.seed, n_train=args.n_train, n_test=args.n_test, size=args.size,
                   keys=keys, force=args.force)
    return 0
