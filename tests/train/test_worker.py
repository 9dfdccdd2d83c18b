"""The `--gpus` worker: one fold job from the run's saved config, no CLI argument list involved."""

from __future__ import annotations

import json
import logging

import pandas as pd

from fashiontag.train import worker
from fashiontag.train.runner import train_run
from helpers.training import KEY, tiny_config, tiny_root


def test_worker_trains_one_fold_from_the_saved_config(tmp_path, make_fashionai_root, caplog):
    root = tiny_root(make_fashionai_root, tmp_path)
    key_dir = train_run(root, "all", "0", tiny_config(tmp_path, "exp=w")).run_dir / KEY
    assert not (key_dir / "fold_1").exists()
    with caplog.at_level(logging.INFO, logger="fashiontag"):
        assert worker.main([str(key_dir / "config.yaml"), KEY, "1"]) == 0
    done = json.loads((key_dir / "fold_1" / "done.json").read_text())
    assert done["fold"] == 1 and done["key"] == KEY
    assert len(done["code"]["git_commit"]) == 40 and done["code"]["versions"]["fastai"]  # the code that made it
    assert set(pd.read_csv(key_dir / "oof.csv")["fold"]) == {0}, "the worker leaves the merge to its parent"


def test_worker_reports_bad_arguments_and_errors(tmp_path, capfd):
    assert worker.main(["only-one"]) == 2
    assert worker.main([str(tmp_path / "missing.yaml"), KEY, "0"]) == 2
    err = capfd.readouterr().err
    assert "usage: python -m fashiontag.train.worker" in err and "missing.yaml" in err
