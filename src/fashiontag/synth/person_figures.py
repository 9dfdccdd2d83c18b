"""Generated photos for person detection: every other image worn by a figure, with its exact person box.

The tiny person detector (yolo/tiny_detector.py) trains on these and checks itself on fresh ones; the
pictures are the demo generator's (`demo.render_sample`), stored as the demo data stores them (JPEG at
quality 90) so training and checks see the same compression artefacts as the demo photos.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from fashiontag.data.boxes import Box, Sample
from fashiontag.synth.demo import DEMO_KEYS, JPEG_QUALITY, demo_values, render_sample

PERSON = "person"
NormBox = tuple[float, float, float, float]


def person_samples(n: int, seed: int, size: int) -> Iterator[tuple[Image.Image, bool, NormBox | None]]:
    """(image, worn, person box as normalised xyxy or None): every other image is worn, keys and values
    cycle over what the generator draws, hanger vs flat-lay is random."""
    for i in range(n):
        rng = np.random.default_rng([seed, i])  # per image, like the demo data: order-independent
        key = DEMO_KEYS[(i // 2) % len(DEMO_KEYS)]
        values = demo_values(key)
        y = values[int(rng.integers(len(values)))]
        worn = i % 2 == 0
        img, info = render_sample(key, y, worn, rng, size)
        yield as_jpeg(img), worn, normalised_box(info.get("person_box") if worn else None, img.size)


def write_person_samples(folder: str | Path, n: int, seed: int, size: int) -> list[Sample]:
    """`person_samples` saved as PNG files (lossless: exactly the JPEG-decoded pixels) with pixel boxes;
    a not-worn image is a Sample without boxes (a negative for the detector)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (img, _worn, box) in enumerate(person_samples(n, seed, size)):
        path = folder / f"person_{seed}_{i:05d}.png"
        img.save(path)
        w, h = img.size
        boxes = [] if box is None else [Box(PERSON, box[0] * w, box[1] * h, box[2] * w, box[3] * h)]
        out.append(Sample(path, w, h, boxes, source=str(path)))
    return out


def as_jpeg(img: Image.Image, quality: int = JPEG_QUALITY) -> Image.Image:
    """The image as the demo data stores it (JPEG), decoded again."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def normalised_box(box, wh: tuple[int, int]) -> NormBox | None:
    """Boxes may come in pixels or already normalised; return normalised xyxy clipped to the image."""
    if box is None:
        return None
    x0, y0, x1, y1 = (float(v) for v in box)
    if max(x0, y0, x1, y1) > 1.0:
        w, h = wh
        x0, x1, y0, y1 = x0 / w, x1 / w, y0 / h, y1 / h
    return tuple(min(1.0, max(0.0, v)) for v in (x0, y0, x1, y1))
