"""The worn split end to end on generated photos (synth/person_figures.py): evidence rule, box rule, review.

An untrained tiny YOLO at a near-zero threshold boxes every photo, so every row goes through the evidence
decision. Its boxes are never confident and drawn heads are not faces, so the evidence rule finds no body
in them (a COCO detector's flat false alarms look like this), while the detector alone calls them worn.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from fashiontag.core.config import load_config
from fashiontag.core.errors import FashiontagError
from fashiontag.core.files import atomic_write_json
from fashiontag.data.worn_file import EVIDENCE_COLUMNS, read_split
from fashiontag.synth.person_figures import person_samples
from fashiontag.worn.decision import NO_BODY
from fashiontag.worn.runner import run_split


def generated_folder(root, n: int = 8):
    root.mkdir(parents=True)
    for i, (img, worn, _) in enumerate(person_samples(n, 3, 128)):
        img.save(root / f"{'worn' if worn else 'flat'}{i}.jpg")
    return root


def cfg_for(tmp_path, weights, **worn) -> dict:
    sets = [f"worn.weights={weights}", f"worn.out_dir={tmp_path / 'split'}", "worn.batch=4", "worn.imgsz=64",
            "worn.device=cpu", "worn.conf=0.0001", f"cache.dir={tmp_path / 'cache'}"]
    return load_config(None, sets + [f"worn.{k}={v}" for k, v in worn.items()])


def test_evidence_rule_end_to_end_then_box_rule(tmp_path, untrained_weights):
    root = generated_folder(tmp_path / "gen")
    df, path = run_split(root, cfg_for(tmp_path, untrained_weights, rule="evidence"), review=3)
    assert (df["persons"] > 0).all() and not df["worn"].any()
    assert set(df["reason"]) == {NO_BODY} and df["score"].between(0, 1, inclusive="left").all()
    assert df["box_aspect"].gt(0).all() and (df["face"] == 0).all()
    assert set(df["rule"]) == {"evidence v2 figure 0.85/0.5"}
    back = read_split(path)
    measured = [c for c in EVIDENCE_COLUMNS if not c.startswith("face_")]  # face_* only describe a face
    assert back[measured].notna().all().all() and back["reason"].tolist() == df["reason"].tolist()
    for name in ("review-hanger.jpg", "review.csv", "hanger.jpg"):
        assert path.with_suffix(f".{name}").is_file()
    assert not path.with_suffix(".review-worn.jpg").exists()  # no worn call to review
    review = pd.read_csv(path.with_suffix(".review.csv"))
    assert len(review) == 3 and review["score"].is_monotonic_decreasing

    with pytest.raises(FashiontagError, match="rule evidence v2"):  # rows of another rule are not reused
        run_split(root, cfg_for(tmp_path, untrained_weights, rule="box"))
    boxed, _ = run_split(root, cfg_for(tmp_path, untrained_weights, rule="box"), force=True)
    assert boxed["worn"].all() and set(boxed["reason"]) == {"box"} and boxed["face"].isna().all()
    assert np.allclose(boxed["score"], 1.0)


def test_auto_rule_trusts_a_tiny_detector_trained_here(tmp_path, untrained_weights):
    tiny = tmp_path / "tiny" / "best.pt"  # the layout train_tiny_person_detector leaves behind
    tiny.parent.mkdir()
    shutil.copy(untrained_weights, tiny)
    atomic_write_json(tiny.parent / "meta.json", {"heldout_worn_agreement": 0.95})
    root = generated_folder(tmp_path / "gen", n=4)
    df, _ = run_split(root, cfg_for(tmp_path, tiny))  # worn.rule=auto from base.yaml
    assert set(df["rule"]) == {"box"} and df["worn"].all()
    other, _ = run_split(root, cfg_for(tmp_path, untrained_weights), force=True)
    assert set(other["reason"]) == {NO_BODY}  # any other detector: auto needs evidence
