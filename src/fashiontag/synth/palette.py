"""Colours, garment paints (solid, stripes, dots) and backgrounds for generated clothing photos."""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

Colour = tuple[int, int, int]
Paint = Colour | Image.Image  # a flat colour or a canvas-sized RGB pattern

SKIN_TONES: list[Colour] = [
    (255, 224, 189), (241, 194, 167), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 60, 40),
]


def colour_distance(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def random_colour(rng: np.random.Generator, avoid: Sequence[Sequence[float]] = (), min_dist: float = 80.0,
                  sat: tuple[float, float] = (0.25, 1.0), val: tuple[float, float] = (0.2, 0.95)) -> Colour:
    """A random colour at least `min_dist` (RGB) from every colour in `avoid` (the best of 40 tries)."""
    best, best_d = (0, 0, 0), -1.0
    for _ in range(40):
        r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))
        c = (round(r * 255), round(g * 255), round(b * 255))
        d = min((colour_distance(c, a) for a in avoid), default=1e9)
        if d >= min_dist:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def shade(c: Colour, factor: float) -> Colour:
    return tuple(int(np.clip(round(x * factor), 0, 255)) for x in c)  # type: ignore[return-value]


def skin_colour(rng: np.random.Generator, avoid: Sequence[Colour] = ()) -> Colour:
    """A skin tone with jitter, or (15%) a mannequin tone of any colour."""
    if rng.random() < 0.15:
        return random_colour(rng, avoid, 60.0, sat=(0.0, 0.4), val=(0.3, 0.95))
    for _ in range(10):
        base = SKIN_TONES[rng.integers(len(SKIN_TONES))]
        c = tuple(int(np.clip(x + rng.integers(-12, 13), 0, 255)) for x in base)
        if min((colour_distance(c, a) for a in avoid), default=1e9) >= 50:
            break
    return c  # type: ignore[return-value]


def make_paint(rng: np.random.Generator, colour: Colour, size: tuple[int, int]) -> Paint:
    """Solid (60%), stripes (20%) or dots (20%) in `colour` and a shade of it."""
    kind = rng.random()
    if kind < 0.6:
        return colour
    img = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(img)
    other = shade(colour, 0.6 if sum(colour) > 300 else 1.6)
    period = max(4, int(size[0] * rng.uniform(0.03, 0.07)))
    if kind < 0.8:
        slope = rng.choice([0.0, 1.0, -1.0])
        w = size[0]
        for k in range(-w, 2 * w, period):
            draw.line([(0, k), (w, k + slope * w)], fill=other, width=max(1, period // 3))
    else:
        r = max(1, period // 4)
        for y in range(0, size[1], period):
            for x in range((y // period % 2) * period // 2, size[0], period):
                draw.ellipse([x - r, y - r, x + r, y + r], fill=other)
    return img


def make_background(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, list[Colour]]:
    """A flat or linear-gradient background (uint8 HxWx3) and its key colours (to keep garments apart)."""
    def pick() -> Colour:
        if rng.random() < 0.5:  # the light neutral of product photos
            g = rng.integers(200, 256)
            return tuple(int(np.clip(g + rng.integers(-10, 11), 0, 255)) for _ in range(3))  # type: ignore
        return random_colour(rng, sat=(0.0, 0.6), val=(0.3, 1.0))

    a = pick()
    if rng.random() < 0.5:
        return np.broadcast_to(np.array(a, np.uint8), (height, width, 3)).copy(), [a]
    b = random_colour(rng, [a], 40.0, sat=(0.0, 0.6), val=(0.3, 1.0))
    t = rng.uniform(0, 2 * math.pi)
    xx, yy = np.arange(width, dtype=np.float32)[None, :], np.arange(height, dtype=np.float32)[:, None]
    ramp = xx / width * math.cos(t) + yy / height * math.sin(t)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    img = np.array(a, np.float32) * (1 - ramp[..., None]) + np.array(b, np.float32) * ramp[..., None]
    img = np.rint(img).astype(np.uint8)
    mid = tuple(int((x + y) / 2) for x, y in zip(a, b, strict=True))
    return img, [a, b, mid]  # type: ignore[list-item]
