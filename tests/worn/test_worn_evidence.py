"""Evidence of a body in a person box, on real photos of people shipped with scikit-image and on flat fills.

The person boxes are what the COCO YOLOv8n int8 detector (../shared/models) found in these photos on
2026-11-30, written out so this test needs no detector.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

from fashiontag.data.worn_file import EVIDENCE_COLUMNS
from fashiontag.worn import evidence
from fashiontag.worn.evidence import Evidence, body_evidence, is_colour, skin_mask

ASTRONAUT_BOX = (0.0108, 0.0308, 0.7117, 1.0)
CAMERAMAN_BOX = (0.0, 0.1221, 0.5714, 1.0)


def test_evidence_fields_are_the_split_file_columns():
    assert [f.name for f in dataclasses.fields(Evidence)] == EVIDENCE_COLUMNS


def test_skin_mask_takes_skin_tones_not_fabric_colours():
    colours = np.array([[[224, 172, 140], [198, 134, 66], [141, 85, 36],   # light, medium, dark skin
                         [30, 60, 200], [40, 160, 60], [128, 128, 128], [250, 250, 250]]], np.uint8)
    assert skin_mask(colours).tolist() == [[True, True, True, False, False, False, False]]


def test_greyscale_photo_is_told_from_a_grey_garment_in_colour():
    grey = np.repeat(skimage_data.camera()[..., None], 3, axis=-1)
    assert not is_colour(grey)
    rng = np.random.default_rng(0)  # a grey sweater photographed in colour still has chroma noise
    noisy = np.clip(grey.astype(int) + rng.integers(-4, 5, grey.shape), 0, 255).astype(np.uint8)
    assert is_colour(noisy)


def test_face_found_in_the_astronaut_photo():
    ev = body_evidence(Image.fromarray(skimage_data.astronaut()), ASTRONAUT_BOX)
    assert ev.colour and 0.2 < ev.face < 0.4
    assert ev.face_skin >= evidence.FACE_SKIN and ev.face_contrast >= evidence.FACE_CONTRAST
    assert ev.box_aspect == pytest.approx(0.72, abs=0.01)
    assert ev.as_row()["face"] == round(ev.face, 4)


def test_face_found_in_a_greyscale_photo_without_a_skin_check():
    img = Image.fromarray(skimage_data.camera()).convert("RGB")
    ev = body_evidence(img, CAMERAMAN_BOX)
    assert not ev.colour and ev.face > 0 and math.isnan(ev.face_skin) and math.isnan(ev.head_skin)


def test_a_face_outside_the_head_zone_does_not_count():
    photo = skimage_data.astronaut()
    canvas = np.full((1536, 512, 3), 235, np.uint8)  # the astronaut's head at the bottom of a tall box
    canvas[-512:] = photo
    ev = body_evidence(Image.fromarray(canvas), (0.0, 0.0, 1.0, 1.0))
    assert ev.face == 0.0


def test_skinless_zone_skips_the_cascade(monkeypatch):
    monkeypatch.setattr(evidence, "_cascade", lambda: pytest.fail("the cascade must not run"))
    blue = Image.new("RGB", (300, 400), (30, 60, 200))
    ev = body_evidence(blue, (0.05, 0.05, 0.95, 0.95))
    assert ev.face == 0.0 and ev.head_skin == 0.0 and ev.colour
    assert ev.box_aspect == pytest.approx((0.9 * 300) / (0.9 * 400), abs=0.01)


def test_skin_coloured_fabric_has_skin_but_no_face():
    rng = np.random.default_rng(1)  # a beige knit: skin-coloured, textured, and no face in it
    knit = np.clip(np.array([205, 160, 125]) + rng.normal(0, 25, (400, 300, 3)), 0, 255).astype(np.uint8)
    ev = body_evidence(Image.fromarray(knit), (0.0, 0.0, 1.0, 1.0))
    assert ev.head_skin > 0.5 and ev.face == 0.0


def test_the_face_is_searched_in_shifted_copies_of_the_head_zone(monkeypatch):
    """A cascade that finds the face only in one shifted copy (a box a few pixels off) still gives the face,
    the widest over the copies, each copy the zone's size and shifted by FACE_SHIFT of the box."""
    photo = Image.fromarray(skimage_data.astronaut())
    crops, NAN = [], float("nan")

    def fake_find_face(head, colour):
        crops.append(head.copy())
        return (0.3, 0.6, 55.0) if len(crops) == 3 else (0.1, 0.5, 45.0) if len(crops) == 5 else (0.0, NAN, NAN)

    monkeypatch.setattr(evidence, "find_face", fake_find_face)
    ev = body_evidence(photo, ASTRONAUT_BOX)
    assert len(crops) == 5 and {c.shape for c in crops} == {crops[0].shape}
    assert (ev.face, ev.face_skin, ev.face_contrast) == (0.3, 0.6, 55.0)
    assert not any(np.array_equal(crops[0], c) for c in crops[1:])  # each copy is a different crop
    monkeypatch.setattr(evidence, "find_face", lambda head, colour: (0.0, NAN, NAN))
    assert body_evidence(photo, ASTRONAUT_BOX).face == 0.0  # in none of the copies: no face
