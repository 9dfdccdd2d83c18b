"""`embed`: penultimate embeddings of a trained fold -> TensorBoard projector files + PCA / t-SNE plots."""

from __future__ import annotations

import argparse
import json
import logging

from fashiontag.cli.common import add_skip_arg

log = logging.getLogger(__name__)


def cmd_embed(args: argparse.Namespace) -> int:
    from fashiontag.infer.embed import embed

    summary = embed(args.run, args.images, out=args.out, limit=args.limit, cat=args.cat, fold=args.fold,
                    seed=args.seed, skip_bad=args.skip_bad, force=args.force, batch_size=args.batch_size,
                    device=args.device, cache_dir=args.cache_dir)
    print(json.dumps(summary, indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed", help="embeddings of images by a trained fold: TensorBoard projector files, PCA and t-SNE plots",
        description="RUN is a fold dir, a key dir (its first finished fold) or a run dir (--cat for several "
                    "keys). Writes tensors.tsv, metadata.tsv, projector_config.pbtxt, pca.png and tsne.png.",
    )
    p.add_argument("run", metavar="RUN")
    p.add_argument("--images", required=True, metavar="DATA_OR_DIR",
                   help="a FashionAI root (labelled by the run's key), a test root, class folders or an image folder")
    p.add_argument("--limit", type=int, default=None, help="embed a seeded random sample of N images")
    p.add_argument("--out", default=None, help="output folder (default: <key dir>/embed/<images folder name>)")
    p.add_argument("--cat", default=None, help="key of a multi-key run")
    p.add_argument("--fold", type=int, default=None, help="fold to use (default: the first finished one)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit sample, PCA and t-SNE")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1")
    p.add_argument("--cache-dir", default="cache", help="image cache folder (decoded once, reused)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output folder's files")
    add_skip_arg(p)
    p.set_defaults(func=cmd_embed)
