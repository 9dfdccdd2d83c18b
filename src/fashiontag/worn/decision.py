"""The worn / not-worn call from a photo's person boxes and the evidence of a body in them, with its reason.

A COCO person detector's box is necessary but not enough: it also boxes dresses and trousers lying flat
or hanging (42% of clothing-small's flat photos at conf 0.4). So with worn.rule=evidence a photo is
called worn only when one of its person boxes (at or above worn.conf) also shows a body:
- `face`: a checked frontal face in the box's head zone (evidence.py), or
- `figure`: a very confident box (worn.figure_conf) shaped like a standing figure, narrower than any
  flat garment's box (pixel width / height at most worn.figure_aspect): a model whose head is cropped.
Each path's strength is its weakest condition as a ratio to its threshold (1.0 = exactly at it); the call
is worn when the strongest path reaches 1.0. `score` keeps that strength, so the least certain calls in
each direction are those closest to 1.0 (review.py).

worn.rule=box is the detector alone (any box at or above worn.conf is worn): right for a detector trained
with flat and hanger photos as negatives, like the tiny detector of the generated data, whose figures have
no real faces. worn.rule=auto picks box for such a detector and evidence for any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from fashiontag.data.worn_file import OLD_RULE
from fashiontag.worn.evidence import EVIDENCE_VERSION, NO_BOX, Evidence, body_evidence
from fashiontag.yolo.person_detector import Persons

Box = tuple[float, float, float, float]
NO_PERSON = "no person"
NO_BODY = "no body evidence"
MAX_BOXES = 3  # person boxes examined per photo, most confident first


@dataclass(frozen=True)
class Rule:
    """The decision's settings: whether evidence is needed, worn.figure_conf, worn.figure_aspect."""

    use_evidence: bool
    figure_conf: float
    figure_aspect: float

    @classmethod
    def from_config(cls, cfg: dict, trained_against_garments: bool) -> Rule:
        """worn.rule from the config; `auto` needs evidence unless the detector learnt flat vs worn itself."""
        worn = cfg["worn"]
        use = worn["rule"] == "evidence" or (worn["rule"] == "auto" and not trained_against_garments)
        return cls(use, float(worn["figure_conf"]), float(worn["figure_aspect"]))

    @property
    def tag(self) -> str:
        """What the split file's `rule` column records: cached rows made with another tag are not reused."""
        if not self.use_evidence:
            return OLD_RULE
        return f"evidence v{EVIDENCE_VERSION} figure {self.figure_conf:g}/{self.figure_aspect:g}"


@dataclass(frozen=True)
class Call:
    worn: bool
    reason: str
    score: float  # the strongest path's strength: >= 1 worn, < 1 not worn (0: no person box)


def path_strengths(conf: float, ev: Evidence, rule: Rule) -> dict[str, float]:
    """Each path's strength for one person box: the weakest condition's ratio to its threshold.
    A face passes its checks or is 0, so its path is 1 + its width (a larger face is a surer call)."""
    figure = min(conf / rule.figure_conf, rule.figure_aspect / ev.box_aspect) if ev.box_aspect > 0 else 0.0
    return {"face": 1.0 + ev.face if ev.face > 0 else 0.0, "figure": figure}


def decide_box(conf: float, ev: Evidence, rule: Rule) -> Call:
    """The call for one person box (its confidence is at or above worn.conf) from its evidence."""
    strengths = path_strengths(conf, ev, rule)
    path = max(strengths, key=strengths.__getitem__)  # a tie goes to the first listed (face)
    score = round(strengths[path], 4)
    return Call(True, path, score) if score >= 1.0 else Call(False, NO_BODY, score)


def decide(boxes: Sequence[tuple[float, Box]], evidence: Callable[[Box], Evidence], rule: Rule,
           max_boxes: int = MAX_BOXES) -> tuple[Call, int, Evidence]:
    """The call for one photo from its person boxes, (conf, normalised xyxy) most confident first.

    `evidence(box)` measures a box; it runs on at most `max_boxes` boxes, stopping at the first that shows
    a body (a group photo's most confident box may be someone turned away). Returns the call, the index
    of the box it rests on (the body, else the strongest box; -1 when there is none) and its evidence."""
    if not boxes:
        return Call(False, NO_PERSON, 0.0), -1, NO_BOX
    if not rule.use_evidence:
        return Call(True, OLD_RULE, 1.0), 0, NO_BOX
    best: tuple[Call, int, Evidence] | None = None
    for i, (conf, box) in enumerate(boxes[:max_boxes]):
        ev = evidence(box)
        call = decide_box(conf, ev, rule)
        if call.worn:
            return call, i, ev
        if best is None or call.score > best[0].score:
            best = (call, i, ev)
    assert best is not None  # boxes is not empty and max_boxes >= 1
    return best


def call_photo(img: Image.Image, persons: Persons, rule: Rule) -> tuple[Call, int, Evidence]:
    """`decide` for one detected photo, measuring its boxes in the image itself."""
    return decide(persons.boxes, lambda box: body_evidence(img, box), rule)
