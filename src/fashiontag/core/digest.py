"""Cache keys: one hash for every cache that is keyed by what its content depends on.

The image cache (data/cache.py), the stacker's and the feature cache's pooled features (stack/features.py,
train/feature_cache.py) and the tiny person detector's weights (yolo/tiny_detector.py) each name their
files by `cache_key(what the content depends on)`, so a change in any input makes a new file and an
unchanged input finds the old one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any


def cache_key(spec: Any, *, lines: Iterable[str] = (), length: int | None = None) -> str:
    """sha1 hex digest of `spec` as JSON (dict keys sorted; other objects as str), then of each of `lines`
    followed by a newline (long lists, e.g. one line per image, hashed without building one string);
    `length` keeps only the first characters."""
    h = hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode())
    for line in lines:
        h.update(f"{line}\n".encode())
    return h.hexdigest()[:length] if length else h.hexdigest()
