"""The `fashiontag` command line: a thin layer over the library.

Each module in this package named `*_cmd.py` defines `register(subparsers)`; commands are found
automatically, so a new capability adds one file. Heavy imports (torch, fastai) happen inside the
command functions so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from fashiontag import __version__
from fashiontag.cli.common import step_hint
from fashiontag.core.errors import FashiontagError, os_error_message
from fashiontag.core.logs import setup_logging

log = logging.getLogger("fashiontag")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fashiontag",
        description="Clothing attribute recognition (FashionAI format) on fastai + timm.",
    )
    parser.add_argument("--version", action="version", version=f"fashiontag {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.endswith("_cmd"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def one_line(message: str) -> str:
    """Some messages carry a parser's multi-line report (YAML, CSV); the user gets one line."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(verbose=args.verbose)
    try:
        result = args.func(args)
    except FashiontagError as exc:
        log.error("%s%s", one_line(str(exc)), step_hint(exc))
        return 2
    except OSError as exc:
        # The environment refused a file operation the library does not wrap (a folder given for a file,
        # a permission, a full disk): one line naming the path, like any other bad input.
        log.debug("file operation failed", exc_info=True)
        log.error("%s", one_line(os_error_message(exc)))
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
