"""Submission writer (exact format), reader and validator; the score / validate-submission commands."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from fashiontag.cli import main
from fashiontag.core.errors import DataError
from fashiontag.fashionai.format import QUESTION_CSV, read_attributes, read_questions, write_labels
from fashiontag.fashionai.keys import OFFICIAL_KEYS
from fashiontag.fashionai.probs import with_probs
from fashiontag.fashionai.submission import (
    format_probs,
    read_submission,
    validate_submission,
    write_submission,
)


def test_format_is_exact_and_sums_to_one():
    assert format_probs(np.array([[0.961, 0.015, 0.0193, 0.003, 0.0017]])) == ["0.9610;0.0150;0.0193;0.0030;0.0017"]
    assert format_probs(np.array([[1 / 3, 1 / 3, 1 / 3]])) == ["0.3334;0.3333;0.3333"]  # residual to the max
    assert format_probs(np.array([[2.0, 2.0]])) == ["0.5000;0.5000"]  # renormalised
    rng = np.random.default_rng(0)
    for n in (2, 5, 10):
        rows = format_probs(rng.dirichlet(np.full(n, 0.3), 200))
        for row in rows:
            parts = row.split(";")
            assert len(parts) == n and all(len(p.split(".")[1]) == 4 for p in parts)
            assert sum(int(p.replace(".", "")) for p in parts) == 10_000  # exactly 1.0000


@pytest.fixture
def test_root(make_fashionai_root, tmp_path):
    """A question root with two keys of different value counts (6 official, 3 custom)."""
    return make_fashionai_root(tmp_path / "demo" / "test", per_value=1, labelled=False)


def _predictions(questions: pd.DataFrame, attributes: dict, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    width = max(len(v) for v in attributes.values() if v)
    probs = np.full((len(questions), width), np.nan)
    for key in questions["key"].unique():
        mask = (questions["key"] == key).to_numpy()
        n = len(attributes[key])
        probs[mask, :n] = rng.dirichlet(np.ones(n), int(mask.sum()))
    return with_probs(questions[["image", "key"]], probs)


def test_write_read_validate_round_trip(test_root, tmp_path):
    attributes = read_attributes(test_root)
    questions = read_questions(test_root)
    preds = _predictions(questions, attributes)
    out = write_submission(tmp_path / "sub.csv", questions, preds.iloc[::-1], attributes)
    lines = out.read_text().splitlines()
    assert len(lines) == len(questions)
    first = lines[0].split(",")
    assert first[:2] == [questions["image"][0], questions["key"][0]]  # question order, no header
    assert first[2].count(";") == len(attributes[questions["key"][0]]) - 1
    sub = read_submission(out, attributes)
    assert sub["image"].tolist() == questions["image"].tolist()
    assert sub["line"].tolist() == list(range(1, len(questions) + 1))
    garment = sub["key"] == "garment_type_labels"
    assert sub.loc[garment, "p_3"].isna().all() and sub.loc[~garment, "p_5"].notna().all()  # NaN padding
    np.testing.assert_allclose(sub[["p_0", "p_1", "p_2"]].to_numpy(), preds[["p_0", "p_1", "p_2"]].to_numpy(),
                               atol=6e-4)
    assert validate_submission(out, test_root / QUESTION_CSV, attributes) == []
    assert not list(tmp_path.glob(".*.tmp"))


def test_missing_predictions_are_named_and_nothing_is_written(test_root, tmp_path):
    attributes = read_attributes(test_root)
    questions = read_questions(test_root)
    preds = _predictions(questions, attributes).drop(index=[0, 7])
    with pytest.raises(DataError, match=rf"2 of {len(questions)} question rows have no prediction "
                                        rf"\(e.g. {questions['image'][0]} \(skirt_length_labels\)"):
        write_submission(tmp_path / "sub.csv", questions, preds, attributes)
    assert not (tmp_path / "sub.csv").exists()
    bad = _predictions(questions, attributes)
    bad.loc[3, "p_1"] = np.nan
    with pytest.raises(DataError, match="1 rows have missing, non-finite or out-of-range"):
        write_submission(tmp_path / "sub.csv", questions, bad, attributes)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda L: L.__setitem__(1, L[1].rsplit(";", 1)[0]), r"sub.csv:2: skirt_length_labels has 6 values but the row has 5"),
        (lambda L: L.__setitem__(1, L[1].replace(";", ";abc;", 1).rsplit(";", 1)[0]), r"sub.csv:2: 'abc' is not a number"),
        (lambda L: L.__setitem__(2, L[2].rsplit(",", 1)[0] + ",nan;" + L[2].split(";", 1)[1]),
         r"sub.csv:3: non-finite probability"),
        (lambda L: L.__setitem__(1, ",".join(L[1].split(",")[:2]) + ",-0.5;0.5;0.5;0.5;0.0;0.0"),
         r"sub.csv:2: probability outside \[0, 1\]"),
        (lambda L: L.__setitem__(1, ",".join(L[1].split(",")[:2]) + ",0.5;0.1;0.1;0.1;0.1;0.2"),
         r"sub.csv:2: probabilities sum to 1.100000"),
        (lambda L: L.__setitem__(1, L[1] + ",x"), r"sub.csv:2: expected 3 columns"),
        (lambda L: L.pop(4), r"1 of \d+ question rows are missing"),
        (lambda L: L.append("Images/x/new.jpg,skirt_length_labels,1;0;0;0;0;0"), r"sub.csv:\d+: Images/x/new.jpg .* not in"),
        (lambda L: L.insert(0, L.pop(1)), r"sub.csv:1: expected .* here \(question order\)"),
        (lambda L: L.append(L[0]), r"sub.csv:\d+: duplicate row .* first at line 1"),
    ],
    ids=["n-values", "not-a-number", "nan", "negative", "sum", "columns", "missing", "extra", "order", "duplicate"],
)
def test_validator_names_every_problem_with_its_line(test_root, tmp_path, edit, expected):
    attributes = read_attributes(test_root)
    questions = read_questions(test_root)
    good = write_submission(tmp_path / "good.csv", questions, _predictions(questions, attributes), attributes)
    lines = good.read_text().splitlines()
    edit(lines)
    sub = tmp_path / "sub.csv"
    sub.write_text("\n".join(lines) + "\n")
    problems = validate_submission(sub, test_root / QUESTION_CSV, attributes)
    assert problems, "the broken submission was accepted"
    assert any(re.search(expected, p) for p in problems), problems


def test_cli_validate_and_score(test_root, tmp_path, capsys):
    attributes = read_attributes(test_root)
    questions = read_questions(test_root)
    sub = write_submission(tmp_path / "sub.csv", questions, _predictions(questions, attributes), attributes)
    qcsv = str(test_root / QUESTION_CSV)
    assert main(["validate-submission", str(sub), "--questions", qcsv]) == 0
    assert f"OK: {sub} has {len(questions)} rows" in capsys.readouterr().out
    broken = tmp_path / "broken.csv"
    broken.write_text(sub.read_text().replace(";", ";;", 1))
    assert main(["validate-submission", str(broken), "--questions", qcsv]) == 1
    assert "broken.csv:1:" in capsys.readouterr().out

    # Answers in label.csv format inside the test root: attributes come from its grandparent (the root).
    answers = questions.assign(label=[
        "y" + "n" * (len(attributes[k]) - 1) for k in questions["key"]
    ])
    write_labels(test_root, answers)
    out_json = tmp_path / "score.json"
    answers_csv = test_root / "Annotations" / "label.csv"
    assert main(["score", str(sub), "--answers", str(answers_csv), "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "BasicPrecision" in printed and "garment_type_labels" in printed and "overall" in printed
    scores = json.loads(out_json.read_text())
    assert [r["key"] for r in scores["keys"]] == ["skirt_length_labels", "garment_type_labels"]
    assert scores["overall"]["n"] == len(questions)
    # Without the custom attributes the garment key is unknown: a one-line error, exit 2.
    lone = tmp_path / "elsewhere" / "x" / "answers.csv"
    lone.parent.mkdir(parents=True)
    lone.write_text(answers_csv.read_text())
    assert main(["score", str(sub), "--answers", str(lone)]) == 2
    assert "unknown attribute key 'garment_type_labels'" in capsys.readouterr().err
    assert main(["score", str(sub), "--answers", str(lone), "--attributes", str(test_root)]) == 0


def test_read_submission_rejects_a_bad_row(tmp_path):
    sub = tmp_path / "s.csv"
    sub.write_text("Images/a.jpg,collar_design_labels,0.2;0.2;0.2;0.2;0.2\nImages/b.jpg,collar_design_labels,1;0\n")
    with pytest.raises(DataError, match="s.csv:2: collar_design_labels has 5 values but the row has 2"):
        read_submission(sub, OFFICIAL_KEYS)
