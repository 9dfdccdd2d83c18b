"""The bad-input corpus: every command against hostile-but-realistic inputs, in-process through cli.main.

Each case (tests/helpers/bad_input_cases.py, bad_input_env.py) builds its inputs in a fresh folder, runs one
command there and asserts the exact outcome: exit 2 with one ERROR line naming the file (and line), or a
counted skip with its report, or (for inputs that used to be silently wrong) the right result. Always: no
traceback, every file that existed before is byte-identical afterwards, and only the expected files appear
(no temporary leftovers).
"""

from __future__ import annotations

import csv
import fnmatch
import re
from collections import Counter

import pytest

import helpers.bad_input_env  # noqa: F401 - registers the second half of the corpus
from fashiontag.cli import main
from helpers.bad_input_cases import CASES
from helpers.bad_inputs import fs_fault, snapshot

LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) [\w.]+: ")


def test_corpus_covers_every_kind_of_input():
    kinds = Counter(category for category, _ in CASES.values())
    assert len(CASES) >= 60, kinds
    for kind in ("images", "labels", "questions", "submissions", "configs", "paths", "faults", "runs", "races"):
        assert kinds[kind] >= 3, kinds


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, monkeypatch, capsys):
    _, build = CASES[name]
    work = tmp_path / "case"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("FASHIONTAG_OFFLINE", "1")
    case = build(work)
    before = snapshot(work)
    if case.patch is not None:
        case.patch(monkeypatch)
    if case.fault is not None:
        fs_fault(monkeypatch, work / case.fault[0], case.fault[1])

    rc = main(case.argv)
    monkeypatch.undo()  # faults off before the files are read back
    monkeypatch.chdir(work)
    out, err = capsys.readouterr()

    assert "Traceback" not in out + err, err
    assert rc == case.rc, f"exit {rc}, expected {case.rc}\nstdout: {out}\nstderr: {err}"
    stray = [line for line in err.splitlines() if line.strip() and not LOG_LINE.match(line)]
    assert not stray, f"stderr lines that are not log lines: {stray}"
    errors = [line for line in err.splitlines() if " ERROR " in line]
    if case.rc == 2:
        assert len(errors) == 1, err
        assert case.error is not None and re.search(case.error, errors[0]), errors[0]
    else:
        assert not errors, err
        if case.out is not None:
            assert re.search(case.out, out, re.S), out

    after = snapshot(work)
    changed = [p for p, digest in before.items() if after.get(p) != digest]
    assert not changed, f"files changed or removed: {changed}"
    new = sorted(set(after) - set(before))
    unexpected = [p for p in new if not any(fnmatch.fnmatch(p, pat) for pat in case.creates)]
    assert not unexpected, f"unexpected new files: {unexpected}"
    assert not [p for p in new if p.rsplit("/", 1)[-1].startswith(".")], f"temporary files left: {new}"
    for pattern in case.creates:
        assert any(fnmatch.fnmatch(p, pattern) for p in new), f"{pattern} was not written"
    if case.report is not None:
        path, n_rows = case.report
        with open(work / path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == n_rows, rows
        assert all(row["reason"] for row in rows), rows
    if case.check is not None:
        case.check(work)
