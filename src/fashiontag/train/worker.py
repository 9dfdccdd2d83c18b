"""One fold job of a `--gpus N` run, in its own process: `python -m fashiontag.train.worker CONFIG KEY FOLD`.

CONFIG is the resolved config the run saved for the key (runs/<exp>/<key>/config.yaml: data.root, exp and
runs_dir included), so the job trains exactly what its parent prepared, on the one GPU its
CUDA_VISIBLE_DEVICES shows. The parent (train/runner.py) merges the folds once every job has finished.
Exit status: 0 done, 2 a FashiontagError (its one-line message is the last line of the log).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from fashiontag.core.config import load_yaml, with_base_defaults
from fashiontag.core.errors import FashiontagError
from fashiontag.core.logs import setup_logging

log = logging.getLogger("fashiontag")


def run_job(config: str | Path, key: str, fold: int) -> Path:
    """Train fold `fold` of `key` from a run's saved config; returns the fold's directory."""
    from fashiontag.train.fold import fold_dir_of
    from fashiontag.train.runner import train_run

    cfg = with_base_defaults(load_yaml(config))
    result = train_run(cfg["data"]["root"], key, str(fold), cfg, gpus=1, merge=False)
    return fold_dir_of(result.run_dir / key, fold)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or not args[2].isdigit():
        print("usage: python -m fashiontag.train.worker RUN/KEY/config.yaml KEY FOLD", file=sys.stderr)
        return 2
    setup_logging(verbose=False)
    try:
        run_job(args[0], args[1], int(args[2]))
    except FashiontagError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
