"""Names that become file or folder names (attribute keys, run names): one rule, checked in one place.

A key read from Annotations/attributes.csv or a label row ends up as runs/<exp>/<key>/, cache/<...>/<key>_*
and Images/<key>/; a key such as `../../x` or `/tmp/x` would make every writer escape its folder. So names
are letters, digits, '.', '_' and '-' only, never start with a dot (hidden files, `.` and `..`).
"""

from __future__ import annotations

import re
from pathlib import Path

from fashiontag.core.errors import DataError, FashiontagError

SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
MAX_LENGTH = 128


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a file name (None when it can)."""
    if not isinstance(name, str) or not name:
        return "is empty"
    if len(name) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    if not SAFE_NAME.fullmatch(name):
        return "may only use letters, digits, '.', '_' and '-'"
    if name.startswith("."):
        return "may not start with '.'"
    return None


def check_name(name: str, what: str = "name", path: str | Path | None = None, line: int | None = None) -> str:
    """Return `name` if it is a safe file name; else raise DataError (naming `path`:`line`) or FashiontagError."""
    problem = name_problem(name)
    if problem is None:
        return name
    message = f"{what} {name!r} {problem} (it becomes a folder name)"
    if path is not None:
        raise DataError(path, message, line)
    raise FashiontagError(message)
