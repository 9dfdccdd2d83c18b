"""Counted skips: commands told to skip bad input record each one (file, line, reason) in a report."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.core.files import atomic_write_csv

log = logging.getLogger(__name__)


@dataclass
class SkipReport:
    """Collects skipped inputs; `handle` either raises (strict) or records (skip mode)."""

    skip: bool = False
    rows: list[dict] = field(default_factory=list)

    def handle(self, error: DataError) -> None:
        if not self.skip:
            raise error
        self.rows.append({"file": error.path, "line": error.line, "reason": error.reason})

    def __len__(self) -> int:
        return len(self.rows)

    def write(self, path: str | Path) -> Path | None:
        """Write the report (only if anything was skipped) and log a one-line summary."""
        if not self.rows:
            return None
        atomic_write_csv(path, pd.DataFrame(self.rows, columns=["file", "line", "reason"]))
        log.warning("skipped %d bad input(s); reasons in %s", len(self.rows), path)
        return Path(path)


def stop_or_fallback(skips: SkipReport, where: Path, fallback: str | None) -> None:
    """Report unreadable test images; stop unless the user asked for a fallback prediction."""
    if not len(skips):
        return
    report = skips.write(where)
    if fallback is None:
        first = skips.rows[0]
        raise FashiontagError(f"{len(skips)} test image(s) cannot be read (all listed in {report}; first: "
                              f"{first['file']}: {first['reason']}); fix or remove them, or pass "
                              "--fallback uniform to give them uniform probabilities")
    log.warning("%d unreadable test image(s) get uniform probabilities (--fallback %s)", len(skips), fallback)
