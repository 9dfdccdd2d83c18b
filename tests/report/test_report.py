"""The CV report: tables per key and overall, TTA gain, XGB vs CNN, confusion PNGs, its input record."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fashiontag.core.config import load_config
from fashiontag.core.errors import FashiontagError
from fashiontag.fashionai.metric import key_metrics
from fashiontag.fashionai.probs import probs_of
from fashiontag.fashionai.runs import load_oof, write_derived_config
from fashiontag.report.cv import discover_runs, md_table, most_confused, write_report
from fashiontag.stack.blend import blend_runs
from helpers.runs import KEY, make_run, truth


@pytest.fixture
def runs(tmp_path):
    runs = tmp_path / "runs"
    t = truth(n_rows=60)
    a = make_run(runs, "cnn", 2.0, 1, t)
    # A TTA OOF that is a little different from the plain one.
    shutil.copy(make_run(tmp_path / "tmp", "cnn", 3.0, 5, t) / KEY / "oof.csv", a / KEY / "oof_tta.csv")
    xgb = make_run(runs, "cnn_xgb", 2.5, 2, t)
    write_derived_config(xgb / KEY, {"seed": 0}, "stack", [str(a / KEY)], ["v"] * 6, oof_file="oof.csv")
    blend_runs([a, xgb], runs / "blend", load_config())
    (runs / "worn").mkdir()  # not a run (the split files): ignored by discovery
    return runs


def test_report_has_tables_plots_and_inputs(runs, tmp_path):
    found = discover_runs(runs)
    assert [p.name for p in found] == ["blend", "cnn", "cnn_xgb"]
    out = tmp_path / "reports" / "cv_report.md"
    write_report(found, out)
    text = out.read_text()
    for heading in ("## Overall", f"## {KEY}", "## TTA gain", "## XGBoost head vs CNN head", "## Confusion"):
        assert heading in text
    assert "| run | kind | keys | mAP | BasicPrecision | accuracy | log loss |" in text
    assert "| cnn +TTA |" in text
    # The per-key mAP of the CNN run is the official metric of its OOF.
    oof = load_oof(runs / "cnn" / KEY)
    m = key_metrics(probs_of(oof), list(oof["label"]))
    assert f"| cnn | 60 | {m['mAP']:.4f} | {m['basic_precision']:.4f} |" in text
    tta = load_oof(runs / "cnn" / KEY, tta=True)
    gain = key_metrics(probs_of(tta), list(tta["label"]))["mAP"] - m["mAP"]
    assert f"| cnn | {KEY} | {m['mAP']:.4f} |" in text and f"{gain:.4f}" in text
    assert "| cnn_xgb |" in text.split("## XGBoost head vs CNN head")[1].split("##")[0]
    png = out.parent / "confusion" / "cnn" / f"{KEY}.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert f"(confusion/cnn/{KEY}.png)" in text
    assert "Knee Length" in text or "Short Length" in text  # value names, not indices
    record = json.loads(out.with_suffix(".json").read_text())
    assert {i["run"] for i in record["inputs"]} == {"blend", "cnn", "cnn_xgb"}
    assert all(len(i["md5"]) == 32 for i in record["inputs"])


def test_report_refuses_a_foreign_file(runs, tmp_path):
    out = tmp_path / "notes.md"
    out.write_text("my notes\n")
    with pytest.raises(FashiontagError, match="--force"):
        write_report(discover_runs(runs), out, plots=False)
    write_report(discover_runs(runs), out, plots=False, force=True)
    write_report(discover_runs(runs), out, plots=False)  # its own report is refreshed


def test_most_confused_and_md_table():
    cm = np.array([[5, 3, 0], [1, 7, 0], [0, 4, 2]])
    assert most_confused(cm, ["a", "b", "c"]) == [("c", "b", 4), ("a", "b", 3), ("b", "a", 1)]
    import pandas as pd

    assert md_table(pd.DataFrame({"x": [0.5], "y": ["z"]})) == "| x | y |\n| --- | --- |\n| 0.5000 | z |"


def test_report_cli(runs, tmp_path):
    from fashiontag.cli import main

    out = tmp_path / "r.md"
    assert main(["report", "--runs", "cnn", "blend", "--out", str(out), "--no-plots",
                 "--set", f"runs_dir={runs}"]) == 0
    text = out.read_text()
    assert "| cnn +TTA |" in text and "| blend |" in text and "cnn_xgb" not in text.split("## TTA")[0]
