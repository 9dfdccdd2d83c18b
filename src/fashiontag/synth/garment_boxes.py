"""Generated detection data: plain-background images with drawn garments and their exact boxes.

Used by the tests and for trying the detection commands without a dataset. Each class has its own
shape and colour so that a tiny detector can learn them in a few CPU epochs.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fashiontag.data.boxes import Box

# class -> (RGB fill, shape); shapes are drawn to fill their box exactly.
STYLE: dict[str, tuple[tuple[int, int, int], str]] = {
    "shirt": ((40, 90, 200), "tee"),
    "t-shirt": ((220, 60, 60), "tee"),
    "jacket": ((90, 60, 30), "rect"),
    "jeans": ((30, 50, 120), "legs"),
    "trousers": ((60, 60, 60), "legs"),
    "sunglasses": ((10, 10, 10), "glasses"),
    "shoes": ((150, 30, 150), "ellipse"),
    "top": ((240, 180, 30), "rect"),
    "skirt": ((30, 160, 80), "trapezoid"),
}


def _draw(draw: ImageDraw.ImageDraw, shape: str, fill: tuple[int, int, int], b: tuple[int, int, int, int]) -> None:
    x1, y1, x2, y2 = b  # inclusive pixel corners: the shape touches all four edges
    w, h = x2 - x1, y2 - y1
    if shape == "rect":
        draw.rectangle(b, fill=fill)
    elif shape == "ellipse":
        draw.ellipse(b, fill=fill)
    elif shape == "tee":  # body plus sleeves spanning the full width
        draw.rectangle((x1 + w // 4, y1, x2 - w // 4, y2), fill=fill)
        draw.rectangle((x1, y1, x2, y1 + h // 3), fill=fill)
    elif shape == "legs":
        draw.rectangle((x1, y1, x2, y1 + h // 4), fill=fill)
        draw.rectangle((x1, y1, x1 + w * 2 // 5, y2), fill=fill)
        draw.rectangle((x2 - w * 2 // 5, y1, x2, y2), fill=fill)
    elif shape == "glasses":
        draw.ellipse((x1, y1, x1 + w * 2 // 5, y2), fill=fill)
        draw.ellipse((x2 - w * 2 // 5, y1, x2, y2), fill=fill)
        draw.rectangle((x1 + w // 4, y1 + h // 3, x2 - w // 4, y1 + h // 2), fill=fill)
    elif shape == "trapezoid":
        draw.polygon([(x1 + w // 4, y1), (x2 - w // 4, y1), (x2, y2), (x1, y2)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape}")


def render(rng: random.Random, classes: list[str], size: tuple[int, int] = (128, 96),
           n_objects: int = 1) -> tuple[Image.Image, list[Box]]:
    """One image with `n_objects` non-overlapping garments (placed in separate columns)."""
    width, height = size
    bg = tuple(rng.randint(200, 250) for _ in range(3))
    img = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(img)
    boxes = []
    col = width // n_objects
    for i in range(n_objects):
        label = rng.choice(classes)
        fill, shape = STYLE[label]
        bw = rng.randint(max(8, col // 3), max(9, col - 4))
        bh = rng.randint(height // 3, height - 4)
        x1 = i * col + rng.randint(0, col - bw - 1)
        y1 = rng.randint(0, height - bh - 1)
        _draw(draw, shape, fill, (x1, y1, x1 + bw - 1, y1 + bh - 1))
        # Continuous box edges of the drawn pixels: columns x1..x1+bw-1 cover [x1, x1+bw).
        boxes.append(Box(label, float(x1), float(y1), float(x1 + bw), float(y1 + bh)))
    return img, boxes


# The demo generator's garments (synth/demo.py) and the detection class each one is.
DEMO_GARMENTS = {"skirt_length_labels": "skirt", "sleeve_length_labels": "top"}


def write_demo_images(folder: str | Path, n: int, seed: int = 0, size: int = 128) -> list[tuple[Path, list[Box]]]:
    """`n` photos from the demo generator (synth/demo.py; worn, on a hanger or flat; exact garment boxes) as JPEGs."""
    from fashiontag.synth.demo import demo_values, render_sample

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        key = list(DEMO_GARMENTS)[i % len(DEMO_GARMENTS)]
        y = int(rng.choice([v for v in demo_values(key) if v != 0]))  # 0 = Invisible: garment cut off
        img, info = render_sample(key, y, bool(i % 3), rng, size)
        x1, y1, x2, y2 = (float(v) * size for v in info["garment_box"])
        path = folder / f"demo_{i:03d}.jpg"
        img.save(path, quality=95)
        out.append((path, [Box(DEMO_GARMENTS[key], x1, y1, x2, y2)]))
    return out


def write_images(folder: str | Path, n: int, classes: list[str], seed: int = 0, size: tuple[int, int] = (128, 96),
                 n_objects: int = 1) -> list[tuple[Path, list[Box]]]:
    """`n` PNG files `img_000.png`... in `folder`; returns (path, boxes) for each."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        img, boxes = render(rng, classes, size, n_objects)
        path = folder / f"img_{i:03d}.png"
        img.save(path)
        out.append((path, boxes))
    return out
