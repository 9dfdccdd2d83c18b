"""Labelled boxes on an image: what detection converters read and synthetic garments are drawn with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Box:
    label: str
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass
class Sample:
    image: Path               # the source image file
    width: int                # the real image size (converters read it from the file)
    height: int
    boxes: list[Box] = field(default_factory=list)
    source: str = ""          # where the annotation came from: "file" or "file:line", for reports
