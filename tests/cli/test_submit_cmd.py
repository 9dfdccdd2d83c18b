"""`fashiontag submit`: a validated CSV covering every question; refusals name missing keys; no overwrite."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fashiontag.cli import main
from fashiontag.fashionai.format import write_questions
from fashiontag.fashionai.keys import OFFICIAL_KEYS
from fashiontag.fashionai.probs import with_probs
from fashiontag.fashionai.runs import RunError
from fashiontag.fashionai.submission import read_submission
from fashiontag.fashionai.submit_run import submit_run
from helpers.runs import softmax

KEYS = ["skirt_length_labels", "collar_design_labels"]


@pytest.fixture
def setup(tmp_path):
    test_root = tmp_path / "test"
    questions = pd.DataFrame([(f"Images/{k}/q{i}.jpg", k) for i in range(4) for k in KEYS], columns=["image", "key"])
    write_questions(test_root, questions)
    run = tmp_path / "runs" / "cnn"
    rng = np.random.default_rng(0)
    for key in KEYS:
        part = questions[questions["key"] == key].iloc[::-1]  # any row order: the writer follows question.csv
        n = len(OFFICIAL_KEYS[key])
        (run / key).mkdir(parents=True)
        with_probs(part, softmax(rng.normal(0, 1, (len(part), n)))).to_csv(run / key / "test.csv", index=False)
    return test_root, run, questions


def test_submit_writes_a_valid_file_in_question_order(setup, tmp_path):
    test_root, run, questions = setup
    out = tmp_path / "sub" / "a.csv"
    assert main(["submit", "--run", str(run), "--test", str(test_root), "--out", str(out)]) == 0
    sub = read_submission(out, OFFICIAL_KEYS)
    assert list(zip(sub["image"], sub["key"], strict=True)) == list(zip(questions["image"], questions["key"], strict=True))
    expect = pd.read_csv(run / KEYS[0] / "test.csv").set_index("image").loc[sub["image"].iloc[0]]
    assert sub["p_0"].iloc[0] == pytest.approx(expect["p_0"], abs=1e-4)
    # Never overwritten without --force.
    before = out.read_text()
    assert main(["submit", "--run", str(run), "--test", str(test_root), "--out", str(out)]) == 2
    assert out.read_text() == before
    assert main(["submit", "--run", str(run), "--test", str(test_root), "--out", str(out), "--force"]) == 0


def test_submit_refuses_a_missing_key(setup, tmp_path):
    test_root, run, _ = setup
    (run / KEYS[1] / "test.csv").unlink()
    (run / KEYS[1] / "fold_0").mkdir()
    with pytest.raises(RunError, match="collar_design_labels: trained but not predicted"):
        submit_run(run, test_root, tmp_path / "x.csv")
    import shutil

    shutil.rmtree(run / KEYS[1])
    with pytest.raises(RunError, match=r"1 key\(s\) have no test.csv \(collar_design_labels: no trained model"):
        submit_run(run, test_root, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_submit_refuses_wrong_value_count(setup, tmp_path):
    test_root, run, questions = setup
    part = questions[questions["key"] == KEYS[1]]
    with_probs(part, np.full((len(part), 6), 1 / 6)).to_csv(run / KEYS[1] / "test.csv", index=False)
    with pytest.raises(RunError, match="has 6 values per row but collar_design_labels has 5"):
        submit_run(run, test_root, tmp_path / "x.csv")
