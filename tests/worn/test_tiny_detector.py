"""The tiny person detector trained on generated figures, used through the ordinary ultralytics path.

Training happens once (about a minute of CPU) into the repository's cache/tiny_person_detector, keyed by
seed, settings and the generator's output, and is reused by later runs and by the demo (slow tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from fashiontag.core.config import load_config
from fashiontag.synth.demo import make_demo_data
from fashiontag.worn.runner import run_split
from fashiontag.yolo.tiny_detector import train_tiny_person_detector, worn_agreement

CACHE = Path(__file__).resolve().parents[2] / "cache" / "tiny_person_detector"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_weights() -> Path:
    torch.set_num_threads(2)
    return train_tiny_person_detector(CACHE)


def test_tiny_detector_is_cached_and_reused(tiny_weights):
    assert tiny_weights.is_file() and tiny_weights.parent.parent == CACHE
    assert train_tiny_person_detector(CACHE) == tiny_weights  # same key: no retraining
    meta = json.loads((tiny_weights.parent / "meta.json").read_text())  # the settings it was trained with
    assert meta["size"] == 64 and meta["heldout_worn_agreement"] >= 0.8


def test_tiny_detector_tells_worn_from_hanger(tiny_weights):
    # Fresh generated images (a seed never used in training or in meta.json's check), half worn.
    assert worn_agreement(tiny_weights, n=120, seed=777, device="cpu") >= 0.8


def test_split_of_demo_data_agrees_with_truth(tiny_weights, tmp_path):
    demo = make_demo_data(tmp_path / "demo", n_train=30, n_test=10, seed=5)
    cfg = load_config(None, ["worn.weights=tiny", f"worn.out_dir={tmp_path / 'split'}",
                             f"cache.dir={CACHE.parent}", "worn.device=cpu"])
    df, path = run_split(demo.train, cfg)
    assert path.name == "demo_train.csv" and set(df["detector"]) == {f"tiny:{tiny_weights.parent.name}"}
    truth = pd.read_csv(demo.truth)
    merged = truth[truth["split"] == "train"].merge(df, on="image", suffixes=("_truth", ""))
    assert len(merged) == 60
    assert (merged["worn_truth"] == merged["worn"]).mean() >= 0.8
    worn = merged[merged["worn"]]
    # best boxes overlap the true figure: their centres lie inside the true person box
    cx, cy = (worn["x0"] + worn["x1"]) / 2, (worn["y0"] + worn["y1"]) / 2
    inside = (cx.between(worn["person_x0"], worn["person_x1"])) & (cy.between(worn["person_y0"], worn["person_y1"]))
    assert inside[worn["worn_truth"]].mean() >= 0.8


def test_worn_decision_keeps_the_tiny_detectors_agreement(tiny_weights):
    """worn.rule=auto trusts the tiny detector's box (it learnt flat and hanger photos as negatives); forcing
    the evidence rule on drawn figures, which have no real faces, would lose most worn calls."""
    from fashiontag.worn.decision import Rule, call_photo
    from fashiontag.yolo.tiny_detector import is_tiny_detector

    assert is_tiny_detector(tiny_weights)
    cfg = load_config(None, [])  # worn.rule=auto
    rule = Rule.from_config(cfg, trained_against_garments=is_tiny_detector(tiny_weights))
    decided = worn_agreement(tiny_weights, device="cpu", call=lambda img, p: call_photo(img, p, rule)[0].worn)
    assert decided == worn_agreement(tiny_weights, device="cpu") and decided >= 0.95  # meta.json's check
    forced = Rule.from_config(load_config(None, ["worn.rule=evidence"]), trained_against_garments=True)
    strict = worn_agreement(tiny_weights, device="cpu", call=lambda img, p: call_photo(img, p, forced)[0].worn)
    assert strict < decided
