"""tests/helpers/devices.py catches what the GPU tier checks (here with the `meta` device as the second one)."""

from __future__ import annotations

import torch

from helpers.devices import DeviceCrossings


def test_crossings_are_recorded_and_same_device_work_is_not():
    a, m = torch.ones(3), torch.ones(3, device="meta")
    with DeviceCrossings() as seen:
        (a * 2 + torch.tensor(1.0)).sum()  # one device (plus a python scalar): fine
        (m * 2).sum()
        a.to("meta")  # a copy between devices
    assert [name for name, _ in seen.events] == ["_to_copy"]
    assert seen.events[0][1] == ["cpu", "meta"]
