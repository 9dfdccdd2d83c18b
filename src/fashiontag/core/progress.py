"""Where a long step is: a progress bar on a terminal, a log line at most every 30 s otherwise.

Every long loop (image-cache building, feature extraction, TTA prediction, stack features, each XGBoost
head, the worn split's detection pass) reports through `Progress`:

    with Progress(len(paths), "image cache", unit="img") as bar:
        for ...:
            bar.update(1)

On a terminal (stderr is a TTY, or mode="bar") it draws a tqdm bar; in a log it writes `what: done/total (pct) rate unit/s, ~time left` at most every `every_s`
seconds, so a multi-hour run leaves a readable train.log instead of a wall of carriage returns. A step that
ran that long also gets a closing line: how many were done, in how long (or where it stopped).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

log = logging.getLogger("fashiontag.progress")

T = TypeVar("T")
LOG_EVERY_S = 30.0


def duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def bars_wanted(mode: str = "auto") -> bool:
    """bar | log | auto (a bar only when stderr is a terminal)."""
    if mode in ("bar", "log"):
        return mode == "bar"
    return sys.stderr.isatty()


def _terminal_bar(total: int | None, what: str, unit: str):
    """A tqdm bar (installed with timm, through huggingface_hub); None without tqdm: log lines then."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=what, unit=unit, leave=False, dynamic_ncols=True)


class Progress:
    """Progress of one step of `total` items (None: unknown, no time left shown)."""

    def __init__(self, total: int | None, what: str, *, unit: str = "it", mode: str = "auto",
                 every_s: float = LOG_EVERY_S, logger: logging.Logger | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.what, self.unit, self.every_s = total, what, unit, float(every_s)
        self.log, self.clock = logger or log, clock
        self.done = 0
        self.start = self._last = clock()
        self.bar = _terminal_bar(total, what, unit) if bars_wanted(mode) else None
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = self.clock()
        if now - self._last >= self.every_s:
            self._last = now
            self.log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """`what: done/total (pct) rate unit/s, ~left left`."""
        elapsed = (self.clock() if now is None else now) - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            text = f"{self.what}: {self.done}/{self.total} ({100 * self.done / self.total:.0f}%)"
        else:
            text = f"{self.what}: {self.done}"
        text += f", {rate:.3g} {self.unit}/s" if rate else ""
        if self.total and rate:
            text += f", ~{duration((self.total - self.done) / rate)} left"
        return text

    def close(self, stopped: bool = False) -> None:
        """The closing line (once): how many in how long, or where it stopped."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elapsed = self.clock() - self.start
        # Steps shorter than the interval close at DEBUG: their callers log their own one-line summary.
        level = logging.INFO if elapsed >= self.every_s else logging.DEBUG
        if stopped:
            self.log.log(level, "%s: stopped at %s after %s", self.what,
                         f"{self.done}/{self.total}" if self.total else self.done, duration(elapsed))
            return
        rate = f" ({self.done / elapsed:.3g} {self.unit}/s)" if elapsed > 0 and self.done else ""
        self.log.log(level, "%s: %d %s in %s%s", self.what, self.done, self.unit, duration(elapsed), rate)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(stopped=exc_type is not None)


def track(items: Iterable[T], what: str, total: int | None = None, **kwargs) -> Iterator[T]:
    """`for x in track(items, "what")`: one update per item (kwargs: Progress's)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, what, **kwargs) as bar:
        for item in items:
            yield item
            bar.update(1)
