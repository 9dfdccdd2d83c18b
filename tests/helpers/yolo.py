"""An untrained tiny YOLO saved as an ordinary .pt: a real ultralytics detector file in seconds, no download."""

from __future__ import annotations

from pathlib import Path

import torch


def save_untrained_yolo(folder: Path) -> Path:
    """`folder/untrained.pt`: the tiny detector's topology with random weights (it finds nobody at 0.4)."""
    from ultralytics import YOLO

    from fashiontag.yolo.env import import_ultralytics
    from fashiontag.yolo.tiny_detector import TINY_YAML

    import_ultralytics()
    torch.manual_seed(0)
    (folder / "tiny-person.yaml").write_text(TINY_YAML)
    path = folder / "untrained.pt"
    YOLO(str(folder / "tiny-person.yaml"), task="detect").save(path)
    return path
