"""User-facing errors: each names the file (and line) at fault so the CLI can print one clear message."""

from __future__ import annotations

import errno
from pathlib import Path


class FashiontagError(Exception):
    """An error caused by user input or environment; the CLI prints it without a traceback."""


class DataError(FashiontagError):
    """Bad data in a named file, optionally at a 1-based line number."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ConfigError(FashiontagError):
    """A bad configuration value or override."""


class WeightsUnavailableError(FashiontagError):
    """Pretrained weights were requested but none of the ways to get them worked."""


# Why a file operation failed, in the words a user acts on (errno -> reason).
_OS_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "already exists",
    errno.ENAMETOOLONG: "file name too long",
    errno.EMFILE: "too many open files",
    errno.EIO: "input/output error",
}


def os_error_reason(exc: OSError) -> str:
    return _OS_REASONS.get(exc.errno, exc.strerror or type(exc).__name__) if exc.errno else str(exc)


def os_error_message(exc: OSError, path: str | Path | None = None, action: str | None = None) -> str:
    """One line naming the path and the reason: `cannot write runs/x/cv.json: no space left on device`.

    `path` is what the command meant to touch; the OS may name another one (a parent folder that could not
    be created, the temporary file beside the output): it is added when it differs.
    """
    target = str(path) if path is not None else (str(exc.filename) if exc.filename is not None else "")
    text = f"cannot {action} {target}" if action else target
    text = f"{text}: {os_error_reason(exc)}" if text else os_error_reason(exc)
    # A temporary file beside the output (atomic writes) says nothing the output's name does not.
    names = [str(n) for n in (exc.filename, exc.filename2)
             if n is not None and str(n) != target and not Path(str(n)).name.startswith(".")]
    if names:
        text += f" ({' -> '.join(names)})"
    return text
