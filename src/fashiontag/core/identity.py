"""The code a run was made with, recorded in its done.json: git commit and dirty flag, library versions.

A result can then be traced to the exact source and libraries that produced it. The git fields are None
outside a checkout of this project (an installed wheel, git missing, a timeout); nothing here ever fails
a run. Versions are read from the installed packages' metadata, without importing them.
"""

from __future__ import annotations

import copy
import functools
import logging
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PACKAGES = ("torch", "timm", "fastai", "xgboost", "ultralytics")
GIT_TIMEOUT_S = 5.0
# src/fashiontag/core/identity.py -> the checkout's root (src layout)
SOURCE_ROOT = Path(__file__).resolve().parents[3]


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(root: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout the code runs from; (None, None) when it is not one.

    The package must sit in that checkout's own src/ folder: an installed copy inside some other repository
    (say a virtual environment within a project) is not that repository's code.
    """
    root = SOURCE_ROOT if root is None else Path(root)
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root.resolve():
        return None, None
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain")
    return commit, (None if status is None else bool(status))


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def code_identity() -> dict[str, Any]:
    """{git_commit, git_dirty, python, fashiontag, versions: {torch, timm, fastai, xgboost, ultralytics}};
    computed once per process (the code that runs is the code that was imported)."""
    return copy.deepcopy(_identity())


@functools.lru_cache(maxsize=1)
def _identity() -> dict[str, Any]:
    try:
        commit, dirty = git_state()
    except Exception:  # never fail a run over its record
        log.debug("git state unavailable", exc_info=True)
        commit, dirty = None, None
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "fashiontag": package_version("fashiontag"),
        "versions": {name: package_version(name) for name in PACKAGES},
    }
