"""The one place that turns a device setting into a torch device."""

from __future__ import annotations

import torch


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """`auto` -> CUDA when there is a usable GPU, else the CPU; anything else names the device."""
    if isinstance(spec, torch.device):
        return spec
    if spec in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def device_of(cfg: dict) -> torch.device:
    """The device a run's config asks for (train.device)."""
    return resolve_device(cfg["train"]["device"])
