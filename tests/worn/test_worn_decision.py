"""The worn decision as pure functions of evidence values: paths, thresholds, scores, box order, rules."""

from __future__ import annotations

import math

import pytest

from fashiontag.core.config import load_config
from fashiontag.worn.decision import NO_BODY, NO_PERSON, Rule, decide, decide_box, path_strengths
from fashiontag.worn.evidence import NO_BOX, Evidence

RULE = Rule(use_evidence=True, figure_conf=0.85, figure_aspect=0.5)
BOX = (0.1, 0.1, 0.6, 0.9)


def ev(aspect: float = 0.8, face: float = 0.0) -> Evidence:
    skin = 0.6 if face else math.nan
    return Evidence(aspect, face, skin, 55.0 if face else math.nan, 0.2, True)


def test_a_face_makes_a_worn_call_at_any_box_shape():
    call = decide_box(0.45, ev(aspect=1.2, face=0.3), RULE)
    assert call.worn and call.reason == "face" and call.score == pytest.approx(1.3)


def test_figure_path_needs_both_confidence_and_a_narrow_box():
    assert decide_box(0.85, ev(aspect=0.5), RULE).reason == "figure"  # exactly at both thresholds: worn
    assert decide_box(0.95, ev(aspect=0.25), RULE).score == pytest.approx(0.95 / 0.85, abs=1e-4)  # weakest
    wide = decide_box(0.95, ev(aspect=1.0), RULE)  # a flat dress: confident but as wide as the frame
    assert not wide.worn and wide.reason == NO_BODY and wide.score == pytest.approx(0.5)
    unsure = decide_box(0.8, ev(aspect=0.3), RULE)
    assert not unsure.worn and unsure.score == pytest.approx(0.8 / 0.85, abs=1e-4)


def test_strengths_are_ratios_to_thresholds():
    s = path_strengths(0.68, ev(aspect=0.625), RULE)
    assert s == {"face": 0.0, "figure": pytest.approx(0.8)}
    assert path_strengths(0.9, NO_BOX, RULE)["figure"] == 0.0  # no box measured: nan aspect is no figure


def test_photo_without_boxes_is_not_worn_and_measures_nothing():
    calls = []
    call, i, evidence = decide([], calls.append, RULE)
    assert (call.worn, call.reason, call.score, i) == (False, NO_PERSON, 0.0, -1) and calls == []
    assert evidence == NO_BOX


def test_boxes_are_examined_in_order_and_the_first_body_wins():
    measured = []
    evidences = {BOX: ev(aspect=1.1), (0, 0, 1, 1): ev(face=0.25), (0.2, 0.2, 0.3, 0.3): ev(face=0.5)}

    def measure(box):
        measured.append(box)
        return evidences[box]

    boxes = [(0.9, BOX), (0.6, (0, 0, 1, 1)), (0.5, (0.2, 0.2, 0.3, 0.3))]
    call, i, evidence = decide(boxes, measure, RULE)
    assert call.reason == "face" and i == 1 and evidence.face == 0.25
    assert measured == [BOX, (0, 0, 1, 1)]  # stops at the first box that shows a body


def test_without_a_body_the_strongest_box_is_kept_and_at_most_max_boxes_measured():
    measured = []

    def measure(box):
        measured.append(box)
        return ev(aspect=box[2])  # x1 stands for the aspect here

    boxes = [(0.9, (0, 0, 2.0, 1)), (0.88, (0, 0, 0.6, 1)), (0.7, (0, 0, 1.0, 1)), (0.99, (0, 0, 0.1, 1))]
    call, i, _ = decide(boxes, measure, RULE, max_boxes=3)
    assert not call.worn and i == 1 and call.score == pytest.approx(0.5 / 0.6, abs=1e-4)
    assert len(measured) == 3  # the fourth box (which would pass) is beyond max_boxes


def test_box_rule_calls_any_box_worn_without_measuring():
    rule = Rule(use_evidence=False, figure_conf=0.85, figure_aspect=0.5)
    call, i, evidence = decide([(0.41, BOX)], lambda box: pytest.fail("no evidence needed"), rule)
    assert call.worn and call.reason == "box" and i == 0 and evidence == NO_BOX
    assert rule.tag == "box"


@pytest.mark.parametrize(("setting", "tiny", "uses"), [
    ("auto", False, True), ("auto", True, False), ("evidence", True, True), ("box", False, False)])
def test_rule_from_config(setting, tiny, uses):
    cfg = load_config(None, [f"worn.rule={setting}", "worn.figure_conf=0.8", "worn.figure_aspect=0.45"])
    rule = Rule.from_config(cfg, trained_against_garments=tiny)
    assert rule.use_evidence is uses
    if uses:
        assert (rule.figure_conf, rule.figure_aspect) == (0.8, 0.45) and "0.8/0.45" in rule.tag
