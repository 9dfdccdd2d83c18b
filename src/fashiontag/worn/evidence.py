"""Evidence of a body inside a person box: a face, skin, and the box's shape.

A COCO person detector also boxes garments lying flat or hanging (a dress or a pair of trousers has the
silhouette of a torso or legs), so its box alone cannot tell worn from flat. This module measures, inside
the box, what a worn photo has and a garment alone has not:
- a frontal face in the head zone (the top of the box), found by scikit-image's LBP cascade. The cascade
  alone also fires on prints, folds and wood grain, so a hit counts only when several windows agree
  (FACE_NEIGHBOURS), it is not flat (luminance spread FACE_CONTRAST: eyes, brows, hair) and, in a colour
  photo, at least FACE_SKIN of it is skin;
- the skin share of the head zone (a flat garment on a bare wooden floor has as much as a neck and
  face, so it is recorded, not decided on; with no skin there, no face can pass and the cascade is skipped);
- the box's shape (pixel width / height): a garment laid flat fills the frame, a standing figure does not.
Measured on 2026-11-30 with the COCO YOLOv8n int8 detector (boxes at conf >= 0.4): real faces in the
people photos shipped with ultralytics, scikit-image and matplotlib had contrast 50-61 and skin 0.47-0.82;
on 720 clothing-small photos (no person in any), 17 had a hit of 2 agreeing windows with a third of it
skin, 4 one passing all checks; on all 3,409, 7 (printed faces, folds, patterned bedspreads). The values
are plain floats, written into the split file, so every call can be explained (decision.py,
docs/RESULTS.md). Version 2 searches the face in five shifted copies of the head zone (FACE_SHIFT).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

EVIDENCE_VERSION = 2      # bump when a measurement below changes: rows made before are not reused (rule tag)
HEAD_ZONE = 0.6           # a face is searched in the top 60% of a person box (a head-and-shoulders shot) ...
HEAD_WIDTHS = 1.0         # ... but no deeper than one box width (a standing figure's head is at the very top)
FACE_WIDTH = 192          # the head zone is resized to this width before the cascade runs
FACE_MIN, FACE_MAX = 0.125, 0.6   # face width as a share of the box width: a full figure .. a portrait
FACE_NEIGHBOURS = 3       # overlapping cascade windows that must agree on a face
FACE_CONTRAST = 40.0      # a face's luminance standard deviation (0-255) is at least this
FACE_SKIN = 0.4           # in a colour photo, at least this share of a face is skin
# The cascade's vote count flips when the box moves by a pixel or two, and an int8 detector's boxes move that much
# between CPUs (the packaged zidane.jpg had a face on one 2-core machine and none on another): the face is searched
# in the head zone and in four copies of it shifted by FACE_SHIFT of the box's width (x) and the zone's height (y).
FACE_SHIFT = 0.02
GREY_CHROMA = 3.0         # mean |R-G| + |G-B| below this: a greyscale photo, where skin cannot be seen


@dataclass(frozen=True)
class Evidence:
    """What one person box shows (see the module docstring); face = 0 when no face was found. Its fields
    are the split file's EVIDENCE_COLUMNS (data/worn_file.py), in order."""

    box_aspect: float     # box width / height in pixels
    face: float           # width of the best face in the head zone / box width (0: none)
    face_skin: float      # skin share inside that face (nan: no face, or a greyscale photo)
    face_contrast: float  # luminance standard deviation inside that face (nan: no face)
    head_skin: float      # skin share of the head zone (nan: a greyscale photo)
    colour: bool          # False for a greyscale photo (skin is then not measured)

    def as_row(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) and not math.isnan(v) else v)
                for k, v in asdict(self).items()}


NAN = float("nan")
NO_BOX = Evidence(NAN, NAN, NAN, NAN, NAN, True)  # nothing measured: no box, or the box rule


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Skin pixels of an HxWx3 uint8 array: the YCrCb box of Chai & Ngan (1999) and the RGB rule of
    Kovac et al. (2003) together; either alone also takes more wood, sand and beige fabric."""
    px = rgb.astype(np.int16)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    cr = 128 + (0.5 * r - 0.4187 * g - 0.0813 * b)
    cb = 128 + (-0.1687 * r - 0.3313 * g + 0.5 * b)
    ycc = (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)
    spread = px.max(axis=-1) - px.min(axis=-1)
    kovac = (r > 95) & (g > 40) & (b > 20) & (spread > 15) & (np.abs(r - g) > 15) & (r > g) & (r > b)
    return ycc & kovac


def is_colour(rgb: np.ndarray) -> bool:
    """False for a greyscale photo stored as RGB (a colour photo of a grey garment still has chroma noise)."""
    px = rgb.astype(np.int16)
    chroma = np.abs(px[..., 0] - px[..., 1]) + np.abs(px[..., 1] - px[..., 2])
    return bool(chroma.mean() >= GREY_CHROMA)


@lru_cache(maxsize=1)
def _cascade():
    """scikit-image's LBP frontal-face cascade, loaded once per process (the XML ships with the package)."""
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

    return Cascade(lbp_frontal_face_cascade_filename())


def find_face(head: np.ndarray, colour: bool) -> tuple[float, float, float]:
    """(face width / head width, its skin share, its contrast) of the widest face passing the checks in a
    head-zone crop already resized to FACE_WIDTH; (0, nan, nan) for none."""
    lo, hi = int(FACE_MIN * FACE_WIDTH), int(FACE_MAX * FACE_WIDTH)
    if head.shape[0] < lo:
        return 0.0, NAN, NAN
    hits = _cascade().detect_multi_scale(img=head, scale_factor=1.2, step_ratio=1, min_size=(lo, lo),
                                         max_size=(hi, hi), min_neighbor_number=FACE_NEIGHBOURS)
    best = (0.0, NAN, NAN)
    for hit in hits:
        face = head[hit["r"]: hit["r"] + hit["height"], hit["c"]: hit["c"] + hit["width"]]
        contrast = float(face.mean(axis=-1).std())
        skin = float(skin_mask(face).mean()) if colour else NAN
        if contrast >= FACE_CONTRAST and (not colour or skin >= FACE_SKIN) and hit["width"] / FACE_WIDTH > best[0]:
            best = (hit["width"] / FACE_WIDTH, skin, contrast)
    return best


def body_evidence(img: Image.Image, box: tuple[float, float, float, float]) -> Evidence:
    """The evidence inside the person `box` (normalised xyxy) of the RGB image `img`."""
    w, h = img.size
    x0, y0 = int(box[0] * w), int(box[1] * h)
    x1, y1 = max(math.ceil(box[2] * w), x0 + 1), max(math.ceil(box[3] * h), y0 + 1)
    bw, bh = x1 - x0, y1 - y0
    zone_h = max(1, round(min(bh * HEAD_ZONE, bw * HEAD_WIDTHS)))
    head = _head_zone(img, x0, y0, bw, zone_h)
    colour = is_colour(head)
    head_skin = float(skin_mask(head).mean()) if colour else NAN
    min_face_px = (FACE_MIN * FACE_WIDTH) ** 2 * FACE_SKIN
    face = (0.0, NAN, NAN)
    if not colour or head_skin * head.shape[0] * head.shape[1] >= min_face_px:  # else no face can pass: skip
        dx, dy = round(bw * FACE_SHIFT), round(zone_h * FACE_SHIFT)
        for sx, sy in ((0, 0), (-dx, 0), (dx, 0), (0, -dy), (0, dy)):
            crop = head if (sx, sy) == (0, 0) else _head_zone(img, x0 + sx, y0 + sy, bw, zone_h)
            found = find_face(crop, colour)
            if found[0] > face[0]:
                face = found
    return Evidence(bw / bh, *face, head_skin, colour)


def _head_zone(img: Image.Image, x0: int, y0: int, bw: int, zone_h: int) -> np.ndarray:
    """The box's head zone (bw x zone_h pixels from x0, y0; outside the image reads as black), resized to
    FACE_WIDTH wide."""
    scale = FACE_WIDTH / bw
    return np.asarray(img.crop((x0, y0, x0 + bw, y0 + zone_h))
                      .resize((FACE_WIDTH, max(1, round(zone_h * scale))), Image.BILINEAR))
