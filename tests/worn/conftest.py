"""Fixtures of the worn stage's tests: an untrained tiny YOLO, a real ultralytics detector file in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def untrained_weights(tmp_path_factory) -> Path:
    """An untrained tiny YOLO saved as an ordinary .pt (no training, no download)."""
    from ultralytics import YOLO

    from fashiontag.yolo.env import import_ultralytics
    from fashiontag.yolo.tiny_detector import TINY_YAML

    import_ultralytics()
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("weights")
    (d / "tiny-person.yaml").write_text(TINY_YAML)
    path = d / "untrained.pt"
    YOLO(str(d / "tiny-person.yaml"), task="detect").save(path)
    return path
