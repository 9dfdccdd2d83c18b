"""core.progress in its log form: a line at most every 30 s (fake clock) with done/total, rate and time left."""

from __future__ import annotations

import logging

import pytest

from fashiontag.core.progress import Progress, duration, track


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "fashiontag.progress"]


def test_log_lines_at_most_every_30_seconds_with_rate_and_time_left(caplog):
    caplog.set_level(logging.INFO, logger="fashiontag.progress")
    clock = FakeClock()
    with Progress(100, "image cache", unit="img", mode="log", clock=clock) as bar:
        for _ in range(100):
            clock.t += 1.0  # one image a second
            bar.update(1)
    out = lines(caplog)
    # 100 s of work: lines at 30, 60 and 90 s, then the closing line.
    assert out[:3] == ["image cache: 30/100 (30%), 1 img/s, ~1m10s left",
                       "image cache: 60/100 (60%), 1 img/s, ~40s left",
                       "image cache: 90/100 (90%), 1 img/s, ~10s left"]
    assert out[3:] == ["image cache: 100 img in 1m40s (1 img/s)"]


def test_fast_steps_close_at_debug_and_slow_ones_log_every_update(caplog):
    caplog.set_level(logging.DEBUG, logger="fashiontag.progress")
    clock = FakeClock()
    with Progress(1000, "fast", mode="log", clock=clock) as bar:
        for _ in range(1000):
            clock.t += 0.01
            bar.update()
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.DEBUG, "fast: 1000 it in 10s (100 it/s)")]
    caplog.clear()
    with Progress(3, "xgboost heads", unit="head", mode="log", clock=clock) as bar:
        for _ in range(3):
            clock.t += 45.0  # each update is later than the interval: each logs
            bar.update()
    assert lines(caplog) == ["xgboost heads: 1/3 (33%), 0.0222 head/s, ~1m30s left",
                             "xgboost heads: 2/3 (67%), 0.0222 head/s, ~45s left",
                             "xgboost heads: 3/3 (100%), 0.0222 head/s, ~0s left",
                             "xgboost heads: 3 head in 2m15s (0.0222 head/s)"]


def test_unknown_total_and_interruption(caplog):
    caplog.set_level(logging.INFO, logger="fashiontag.progress")
    clock = FakeClock()
    with pytest.raises(KeyboardInterrupt), Progress(None, "detection", unit="batch", mode="log",
                                                     clock=clock) as bar:
        for _ in range(4):
            clock.t += 20.0
            bar.update()
        raise KeyboardInterrupt
    assert lines(caplog) == ["detection: 2, 0.05 batch/s", "detection: 4, 0.05 batch/s",
                             "detection: stopped at 4 after 1m20s"]


def test_track_counts_items_and_uses_their_length(caplog):
    caplog.set_level(logging.INFO, logger="fashiontag.progress")
    clock = FakeClock()

    def slow(items):
        for x in items:
            clock.t += 31.0
            yield x

    assert list(track(slow([1, 2]), "views", total=2, mode="log", clock=clock)) == [1, 2]
    assert lines(caplog)[0] == "views: 1/2 (50%), 0.0323 it/s, ~31s left"
    caplog.clear()
    assert list(track(range(5), "rows", mode="log", clock=clock)) == list(range(5))
    assert lines(caplog) == [], "a step shorter than the interval stays quiet at INFO"


def test_bar_mode_draws_a_bar_and_still_logs_the_closing_line(caplog, capsys):
    caplog.set_level(logging.INFO, logger="fashiontag.progress")
    clock = FakeClock()
    with Progress(3, "tta", mode="bar", clock=clock) as bar:
        assert bar.bar is not None
        clock.t += 40.0
        bar.update(3)
    assert "tta" in capsys.readouterr().err
    assert lines(caplog) == ["tta: 3 it in 40s (0.075 it/s)"], "a bar draws; only the closing line is logged"


def test_duration():
    assert [duration(s) for s in (0, 12.4, 185, 3720, 90000)] == ["0s", "12s", "3m05s", "1h02m", "25h00m"]
