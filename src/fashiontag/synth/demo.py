"""Generated demo data in the FashionAI layout, where the attribute is visible geometry.

    DST/train/Images/<key>/<md5>.jpg, DST/train/Annotations/label.csv     a training root
    DST/test/Images/<key>/<md5>.jpg,  DST/test/Tests/question.csv         a test root
    DST/test_answers.csv    label.csv rows of the test images (for `fashiontag score`)
    DST/truth.csv           every image: split, image, key, y, label, worn, mode, length, person and
                            garment boxes (normalised xyxy, pixel edges; empty when absent)
    DST/demo.json           the generator's settings

Skirt length is where the hem falls between hips (0) and floor (1); sleeve length is how much of the
shoulder-to-wrist span the sleeve covers. On a hanger or flat-lay the same garment is drawn without the
person, so the length reads against the garment's own proportions. 'Invisible' is honest: the frame
cuts the garment above its hem (skirts) or inside the shoulders (sleeves). 'm' rows are drawn in the
gap between their own value's band and the neighbour's, closer to the boundary than any clean row.
Everything is a function of the seed: the same seed gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fashiontag.core.errors import FashiontagError
from fashiontag.core.files import atomic_write_csv, atomic_write_json
from fashiontag.fashionai.format import label_string, write_labels, write_questions
from fashiontag.fashionai.keys import OFFICIAL_KEYS
from fashiontag.synth import draw, palette

log = logging.getLogger(__name__)

SUPERSAMPLE = 2  # draw at 2x and average down: smooth edges, boxes still exact to the pixel
MAYBE_RATE = 0.03
JPEG_QUALITY = 90
OUTPUTS = ("train", "test", "test_answers.csv", "truth.csv", "demo.json")


@dataclass(frozen=True)
class KeySpec:
    garment: str  # skirt | top
    bands: dict[int, tuple[float, float]]  # value index -> length range of clean examples


# Bands are separated by gaps so clean rows are unambiguous; 'm' rows fall in the gaps. Sleeve value 7
# (Long Sleeves) is left out: it differs from Wrist Length by a few pixels of hand at 128 px.
SPECS: dict[str, KeySpec] = {
    "skirt_length_labels": KeySpec("skirt", {1: (0.05, 0.18), 2: (0.36, 0.48), 3: (0.58, 0.70),
                                             4: (0.80, 0.88), 5: (0.96, 1.0)}),
    "sleeve_length_labels": KeySpec("top", {1: (0.0, 0.0), 2: (0.08, 0.14), 3: (0.24, 0.34), 4: (0.44, 0.54),
                                            5: (0.64, 0.76), 6: (0.92, 1.0), 8: (1.25, 1.4)}),
}
DEMO_KEYS = tuple(SPECS)


def demo_values(key: str) -> list[int]:
    """The value indices the generator draws for `key` (always includes 0, Invisible)."""
    return [0, *sorted(_spec(key).bands)]


def _spec(key: str) -> KeySpec:
    if key not in SPECS:
        raise FashiontagError(f"no demo generator for {key!r}; available: {', '.join(SPECS)}")
    return SPECS[key]


def maybe_neighbours(key: str, y: int) -> list[int]:
    """Values that a borderline `y` row may mark 'm': the officially adjacent values that are drawn as a
    length band (not Invisible, not sleeveless, and not across the left-out Long Sleeves)."""
    bands = _spec(key).bands
    if bands.get(y, (0.0, 0.0))[1] <= 0:
        return []
    return [v for v in (y - 1, y + 1) if bands.get(v, (0.0, 0.0))[1] > 0]


def sample_length(key: str, y: int, rng: np.random.Generator, maybe: bool = False) -> tuple[float, tuple[int, ...]]:
    """The drawn length for value `y` and the values to mark 'm' (for y=0: the hidden true length)."""
    bands = _spec(key).bands
    if y == 0:  # long enough that the crop really hides the evidence (see _plan_hidden)
        hidden = [v for v in sorted(bands) if bands[v][0] >= 0.2]
        lo, hi = bands[hidden[rng.integers(len(hidden))]]
        return float(rng.uniform(lo, hi)), ()
    lo, hi = bands[y]
    neighbours = maybe_neighbours(key, y)
    if maybe and neighbours:
        nb = neighbours[rng.integers(len(neighbours))]
        if nb > y:
            gap = bands[nb][0] - hi
            return float(hi + gap * rng.uniform(0.2, 0.45)), (nb,)
        gap = lo - bands[nb][1]
        return float(lo - gap * rng.uniform(0.2, 0.45)), (nb,)
    return float(rng.uniform(lo, hi)), ()


def _plan_visible(shapes: list, angle: float, canvas: int, rng: np.random.Generator,
                  fill: tuple[float, float] = (0.6, 0.92)) -> draw.Frame:
    """Scale and place `shapes` (rotated by `angle`) fully inside the canvas, filling a random share."""
    u0, v0, u1, v1 = draw.extent(shapes, draw.Frame(1.0, angle))
    margin = 0.03 * canvas
    inner = canvas - 2 * margin
    scale = rng.uniform(*fill) * inner / max(u1 - u0, v1 - v0)
    left = margin + rng.uniform(0, inner - (u1 - u0) * scale)
    top = margin + rng.uniform(0, inner - (v1 - v0) * scale)
    return draw.Frame(scale, angle, (0.0, 0.0), (left - u0 * scale, top - v0 * scale))


def _plan_hidden(garment: str, top_v: float, angle: float, canvas: int, rng: np.random.Generator) -> draw.Frame:
    """A crop that hides the evidence: the bottom edge just below the waist (hidden hems are at least
    knee length, 0.12 units lower), or the sides inside the shoulders and the bottom above the elbows.
    It does not depend on the hidden length, so the image does not either (tested)."""
    if garment == "skirt":
        bottom = rng.uniform(draw.WAIST_V + 0.05, draw.HIP_V + 0.06)
        height = bottom - (top_v - rng.uniform(0.02, 0.1))
        centre = rng.uniform(-0.05, 0.05) * height
        return draw.Frame(canvas / height, angle, (centre, bottom), (canvas / 2, canvas))
    half = rng.uniform(0.06, 0.075)
    return draw.Frame(canvas / (2 * half), angle, (0.0, rng.uniform(0.07, 0.3 - 2 * half)), (canvas / 2, 0.0))


def _norm_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    h, w = mask.shape
    return cols[0] / w, rows[0] / h, (cols[-1] + 1) / w, (rows[-1] + 1) / h


def render_sample(key: str, y: int, worn: bool, rng: np.random.Generator, size: int = 128, *,
                  hanger: bool | None = None, maybe: bool | None = None, length: float | None = None,
                  layers: bool = False) -> tuple[Image.Image, dict]:
    """One generated photo of the garment for `key` with value `y`: worn by a figure, or not worn.

    Not-worn garments hang on a hanger or lie flat (`hanger`; random if None). `maybe`: draw a
    borderline length and mark the neighbour 'm' (random at MAYBE_RATE if None). `length` overrides the
    drawn length (skirt: hips 0 .. floor 1; sleeve: share of shoulder-to-wrist) without changing anything
    else that is drawn; for y=0 it is the hidden length. Returns the RGB image
    and info: key, y, maybe (indices), worn, mode, length, angle and the normalised xyxy boxes
    person_box (worn only; includes the garment), garment_box, hanger_box (None when absent). `layers`
    adds info["masks"] (bool arrays per part, any coverage) and info["background"] (the same image
    without the foreground), for exactness checks.
    """
    spec = _spec(key)
    if y not in demo_values(key):
        raise FashiontagError(f"value {y} of {key} is not generated; generated values: {demo_values(key)}")
    maybe = bool(rng.random() < MAYBE_RATE) if maybe is None else maybe
    drawn, maybe_idx = sample_length(key, y, rng, maybe)
    length = drawn if length is None else float(length)
    if worn:
        mode = "worn"
    else:
        mode = "hanger" if (rng.random() < 0.5 if hanger is None else hanger) else "flat"
    body = draw.Body.random(rng, {"worn": (8, 28), "hanger": (3, 15), "flat": (25, 50)}[mode])
    if spec.garment == "skirt":
        flare = rng.uniform(0.08, 0.32)
        garment = [draw.skirt_shape(body, length, flare)]
    else:
        hem_v, neck = rng.uniform(0.47, 0.53), rng.uniform(0.015, 0.06)
        garment = draw.top_shapes(body, length, hem_v, neck)
    at = "waist" if spec.garment == "skirt" else "shoulders"
    must = list(garment) + (draw.hanger_lines(body, at) if mode == "hanger" else [])
    if worn:  # skirts show the whole figure; tops show it from the head down to the thighs
        person = draw.person_shapes(body)
        must += person if spec.garment == "skirt" else person[4:] + [[(0.0, rng.uniform(0.56, 0.8))]]
    canvas_px = size * SUPERSAMPLE
    if y == 0:
        angle = rng.uniform(-2, 2)
        frame = _plan_hidden(spec.garment, draw.extent(must)[1], angle, canvas_px, rng)
    else:
        angle = rng.uniform(-6, 6)
        # A worn figure is tall and thin: let it fill more of the frame so its legs stay legible.
        frame = _plan_visible(must, angle, canvas_px, rng, (0.75, 0.97) if worn else (0.6, 0.92))
    body = body.placed(frame)

    canvas = draw.Canvas(canvas_px, canvas_px)
    bg, bg_colours = palette.make_background(rng, canvas_px, canvas_px)
    skin = palette.skin_colour(rng, bg_colours) if worn else None
    colour = palette.random_colour(rng, bg_colours + ([skin] if skin else []), 90.0)
    if mode == "hanger":
        hc = draw.HANGER_COLOURS[rng.integers(len(draw.HANGER_COLOURS))]
        if min(palette.colour_distance(hc, c) for c in bg_colours) < 60:
            hc = max(draw.HANGER_COLOURS, key=lambda c: min(palette.colour_distance(c, b) for b in bg_colours))
        draw.draw_hanger(canvas, body, rng, at, hc)
    if worn:
        draw.draw_person(canvas, body, rng, skin)
    if spec.garment == "skirt":
        draw.draw_skirt(canvas, body, length, rng, colour, flare)
    else:
        draw.draw_top(canvas, body, length, rng, colour, hem_v, neck)

    fg = np.asarray(canvas.image)
    full = np.where(fg[..., 3:] > 0, fg[..., :3], bg)

    def down(a: np.ndarray) -> np.ndarray:  # box filter: the supersampled pixels' mean
        return np.asarray(Image.fromarray(a).reduce(SUPERSAMPLE), dtype=np.float32)

    noise = rng.normal(0, rng.uniform(2, 6), (size, size, 3)) if rng.random() < 0.4 else 0.0
    image = np.clip(np.rint(down(full) + noise), 0, 255).astype(np.uint8)
    parts = np.asarray(canvas.parts)
    subs = [parts[i::SUPERSAMPLE, j::SUPERSAMPLE] for i in range(SUPERSAMPLE) for j in range(SUPERSAMPLE)]

    def covered(*ids: int) -> np.ndarray:  # any supersampled pixel shows one of the parts
        return np.logical_or.reduce([sub == i for sub in subs for i in ids] or [np.zeros_like(subs[0], bool)])

    masks = {"person": covered(draw.PART_PERSON, draw.PART_GARMENT) if worn else covered(),
             "garment": covered(draw.PART_GARMENT), "hanger": covered(draw.PART_HANGER)}
    info = {"key": key, "y": y, "maybe": maybe_idx, "worn": worn, "mode": mode, "length": round(length, 4),
            "angle": round(angle, 2), **{f"{k}_box": _norm_box(m) for k, m in masks.items()}}
    if layers:
        info["masks"] = masks
        info["background"] = Image.fromarray(np.clip(np.rint(down(bg) + noise), 0, 255).astype(np.uint8))
    return Image.fromarray(image), info


# ---- the dataset -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoData:
    root: Path
    train: Path
    test: Path
    answers: Path
    truth: Path
    n_train: int  # images, all keys together
    n_test: int


def plan_rows(key: str, n: int, rng: np.random.Generator) -> list[tuple[int, bool, bool]]:
    """(y, worn, maybe) for n rows: values balanced, half worn, ~MAYBE_RATE borderline rows."""
    values = demo_values(key)
    ys = np.array([values[i % len(values)] for i in range(n)])
    worn = np.arange(n) % 2 == 0
    rng.shuffle(ys)
    rng.shuffle(worn)
    eligible = np.flatnonzero([bool(maybe_neighbours(key, int(y))) for y in ys])
    n_maybe = min(len(eligible), max(1, round(MAYBE_RATE * n)) if n >= 10 else 0)
    maybe = np.zeros(n, dtype=bool)
    maybe[rng.choice(eligible, n_maybe, replace=False)] = True
    return [(int(a), bool(b), bool(c)) for a, b, c in zip(ys, worn, maybe, strict=True)]


def _check_target(dst: Path, force: bool) -> None:
    if dst.exists() and not dst.is_dir():
        raise FashiontagError(f"{dst} exists and is not a directory")
    if dst.is_dir() and any(dst.iterdir()) and not force:
        raise FashiontagError(f"{dst} is not empty; pass --force to replace the generated data in it")


def _write_split(build: Path, split: int, n: int, keys: list[str], seed: int, size: int) -> list[dict]:
    rows = []
    for key in keys:
        key_id = list(OFFICIAL_KEYS).index(key)  # stable: a key's images do not depend on --keys
        plan = plan_rows(key, n, np.random.default_rng([seed, split, key_id, 0]))
        (build / OUTPUTS[split] / "Images" / key).mkdir(parents=True, exist_ok=True)
        for i, (y, worn, maybe) in enumerate(plan):
            img, info = render_sample(key, y, worn, np.random.default_rng([seed, split, key_id, 1, i]), size,
                                      maybe=maybe)
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=JPEG_QUALITY)
            data = buf.getvalue()
            image = f"Images/{key}/{hashlib.md5(data).hexdigest()}.jpg"
            path = build / OUTPUTS[split] / image
            if path.exists():
                raise FashiontagError(f"two generated images are identical ({image}); change --seed")
            path.write_bytes(data)
            row = {"split": OUTPUTS[split], "image": image, "key": key, "y": y,
                   "label": label_string(y, len(OFFICIAL_KEYS[key]), info["maybe"]),
                   "worn": worn, "mode": info["mode"], "length": info["length"]}
            for part in ("person", "garment"):
                box = info[f"{part}_box"] or (np.nan,) * 4
                row.update({f"{part}_{c}": float(v) for c, v in zip(("x0", "y0", "x1", "y1"), box, strict=True)})
            rows.append(row)
    return rows


def make_demo_data(dst: str | Path, *, seed: int = 42, n_train: int = 240, n_test: int = 60, size: int = 128,
                   keys: list[str] | tuple[str, ...] = DEMO_KEYS, force: bool = False) -> DemoData:
    """Write the generated dataset into `dst` (n_train / n_test images per key); see the module doc.

    Refuses a non-empty `dst` unless `force`; with `force` only the generated outputs are replaced.
    The data is built in a temporary folder inside `dst` and moved into place when complete.
    """
    keys = list(keys)
    for key in keys:
        _spec(key)
    if seed < 0 or n_train < 1 or n_test < 1 or size < 32 or not keys:
        raise FashiontagError("make-demo-data needs seed >= 0, n-train and n-test >= 1, size >= 32 and a key")
    dst = Path(dst)
    _check_target(dst, force)
    dst.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".demo-building-", dir=dst))
    try:
        train = _write_split(build, 0, n_train, keys, seed, size)
        test = _write_split(build, 1, n_test, keys, seed, size)
        train_df, test_df = pd.DataFrame(train), pd.DataFrame(test)
        write_labels(build / "train", train_df)
        write_questions(build / "test", test_df)
        atomic_write_csv(build / "test_answers.csv", test_df[["image", "key", "label"]], header=False,
                         lineterminator="\n")
        atomic_write_csv(build / "truth.csv", pd.concat([train_df, test_df], ignore_index=True))
        atomic_write_json(build / "demo.json", {
            "seed": seed, "n_train": n_train, "n_test": n_test, "size": size, "jpeg_quality": JPEG_QUALITY,
            "keys": {k: demo_values(k) for k in keys}, "maybe_rate": MAYBE_RATE,
        })
        for name in OUTPUTS:  # only our own outputs are replaced; anything else in dst is left alone
            target = dst / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            os.replace(build / name, target)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    log.info("wrote %d train and %d test images (%s, %d px) to %s", len(train), len(test),
             ", ".join(keys), size, dst)
    return DemoData(dst, dst / "train", dst / "test", dst / "test_answers.csv", dst / "truth.csv",
                    len(train), len(test))
