"""Catch tensors crossing devices: a dispatch mode that records every operation whose tensors sit on more
than one device (an implicit copy), every copy between devices, and every read of a device value (`.item()`,
`bool()`: `_local_scalar_dense`), which waits for the device. 0-d CPU tensors (python scalars) are allowed."""

from __future__ import annotations

import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode


def _devices(tree) -> set:
    return {t.device for t in pytree.tree_leaves(tree) if isinstance(t, torch.Tensor)
            and not (t.device.type == "cpu" and t.dim() == 0)}


class DeviceCrossings(TorchDispatchMode):
    """`with DeviceCrossings() as seen: ...`; then `seen.events` lists (op, devices) of each crossing."""

    def __init__(self):
        super().__init__()
        self.events: list[tuple[str, list[str]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        inputs = _devices((args, kwargs))
        if name == "_local_scalar_dense" and any(d.type != "cpu" for d in inputs):
            self.events.append((name, sorted(str(d) for d in inputs)))
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        every = inputs | _devices(out)
        if len(every) > 1:
            self.events.append((name, sorted(str(d) for d in every)))
        return out
