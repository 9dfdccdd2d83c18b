"""The clothing classes the detect stage tags, and the label spellings it maps onto them."""

from __future__ import annotations

# The garments the write-ups tag; `--classes` replaces the list.
DEFAULT_CLASSES = ["shirt", "t-shirt", "jacket", "jeans", "trousers", "sunglasses", "shoes", "top", "skirt"]
# Spellings seen in clothing annotation sets that the normalised match (yolo/dataset.py ClassMap) misses.
ALIASES = {"tee": "t-shirt", "pant": "trousers", "jean": "jeans", "glasse": "sunglasses", "sneaker": "shoes"}


def parse_classes(spec: str | list[str] | None) -> list[str]:
    """`--classes` (comma list or list) -> class names; None -> DEFAULT_CLASSES."""
    if spec is None:
        return list(DEFAULT_CLASSES)
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    return [n.strip() for n in names if n.strip()]
