"""Relative paths listed in data files (label.csv, question.csv) must stay inside their root.

One resolver for every image a dataset lists: an absolute path, a Windows drive, or a `..` that climbs out
of the root would make a command read (and import-folders copy) files the dataset does not own. The check is
lexical: symlinks the owner put inside a root are the owner's choice and are followed as usual.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from fashiontag.core.errors import DataError

_DRIVE = re.compile(r"^[A-Za-z]:")


def relative_problem(rel: str) -> str | None:
    """Why `rel` is not a path inside a root (None when it is)."""
    if not isinstance(rel, str) or not rel.strip():
        return "is empty"
    if any(ord(c) < 32 for c in rel):
        return "contains control characters"
    if rel.startswith(("/", "\\")) or _DRIVE.match(rel):
        return "is absolute; paths must be relative to the dataset root"
    parts = re.split(r"[\\/]", rel)
    if ".." in parts:
        return "climbs out of the dataset root with '..'"
    if posixpath.normpath(rel.replace("\\", "/")) in (".", ""):
        return "names the root itself, not a file"
    return None


def inside_root(root: str | Path, rel: str, source: str | Path | None = None, line: int | None = None) -> Path:
    """root / rel, or DataError naming `source`:`line` (the file listing `rel`; else the path) and why."""
    problem = relative_problem(rel)
    if problem is not None:
        raise DataError(source if source is not None else Path(root), f"image path {rel!r} {problem}", line)
    return Path(root) / rel
