"""Logging set-up shared by the CLI: readable in a terminal and in a redirected log file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(verbose: bool = False, logfile: str | Path | None = None) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile is not None:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, encoding="utf-8"))
    logging.basicConfig(level=level, format=FORMAT, datefmt="%H:%M:%S", handlers=handlers, force=True)
    # Third-party libraries are chatty at INFO; keep our own messages readable.
    for name in ("PIL", "matplotlib", "urllib3", "fsspec", "timm", "h5py"):
        logging.getLogger(name).setLevel(logging.WARNING)


def add_file_handler(logfile: str | Path) -> logging.Handler:
    """Also log to `logfile` (e.g. a run directory's train.log); returns the handler to remove later."""
    Path(logfile).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logfile, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logging.getLogger().addHandler(handler)
    return handler
