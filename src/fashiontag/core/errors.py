"""User-facing errors: each names the file (and line) at fault so the CLI can print one clear message."""

from __future__ import annotations

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
