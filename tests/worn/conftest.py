"""Fixtures of the worn stage's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.yolo import save_untrained_yolo


@pytest.fixture(scope="package")
def untrained_weights(tmp_path_factory) -> Path:
    """An untrained tiny YOLO saved as an ordinary .pt (no training, no download)."""
    return save_untrained_yolo(tmp_path_factory.mktemp("weights"))
