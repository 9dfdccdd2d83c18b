"""The one place that turns a device setting into a torch device, and the kernel switches training and the
benchmark share.

`auto` means "the GPU when there is one": it falls back to the CPU only on a machine without an NVIDIA GPU.
Where a GPU is visible but torch cannot use it (a CPU-only torch wheel, a driver/runtime mismatch, a busy or
broken device), training silently running 50-100x slower on the CPU is the worst outcome, so `auto` stops
with one line saying why; `device: cpu` asks for the CPU explicitly and is always honoured.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from fashiontag.core.errors import ConfigError

log = logging.getLogger(__name__)
DEV_NODE = Path("/dev/nvidia0")  # the first GPU's device file, present wherever the NVIDIA driver sees a GPU


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def torch_build() -> str:
    """`torch 2.x built for CUDA 12.y`, or `... without CUDA (a CPU-only wheel)`."""
    cuda = torch.version.cuda
    return f"torch {torch.__version__} " + (f"built for CUDA {cuda}" if cuda else "built without CUDA (a CPU-only wheel)")


def gpu_signs() -> list[str]:
    """What says this machine has an NVIDIA GPU, whether or not torch can use it."""
    signs = []
    try:
        count = torch.cuda.device_count()
    except Exception as exc:  # noqa: BLE001 - any driver failure is a sign, reported verbatim
        signs.append(f"torch.cuda.device_count() failed: {_one_line(exc)}")
    else:
        if count > 0:
            signs.append(f"torch.cuda.device_count() is {count}")
    get_count = getattr(torch._C, "_cuda_getDeviceCount", None)  # absent in CPU-only builds
    if get_count is not None:
        try:
            get_count()
        except Exception as exc:  # noqa: BLE001
            signs.append(f"the CUDA driver failed: {_one_line(exc)}")
    if shutil.which("nvidia-smi"):
        signs.append("nvidia-smi is installed")
    if DEV_NODE.exists():
        signs.append(f"{DEV_NODE} exists")
    return signs


def cuda_problem() -> str | None:
    """Why a GPU this machine has is unusable by torch; None when CUDA works or there is no GPU at all."""
    if torch.cuda.is_available():
        return None
    signs = gpu_signs()
    if not signs:
        return None
    return f"{'; '.join(signs)}, but torch.cuda.is_available() is False ({torch_build()})"


def resolve_device(spec: str | torch.device | None = "auto", setting: str = "train.device") -> torch.device:
    """`auto` -> CUDA when there is a usable GPU, the CPU when there is no GPU; anything else names the device.

    Raises ConfigError (one line, naming `setting`) when `auto` finds an unusable GPU, when CUDA is asked for
    and unavailable, or when the name is not a device.
    """
    if isinstance(spec, torch.device):
        return spec
    text = "auto" if spec is None else str(spec).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        problem = cuda_problem()
        if problem:
            raise ConfigError(f"{setting}: auto found an NVIDIA GPU that torch cannot use ({problem}); fix the "
                              f"driver or install a CUDA build of torch, or set {setting}=cpu to run on the CPU")
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{setting}: {spec!r} is not a device (auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = cuda_problem() or f"no NVIDIA GPU found ({torch_build()})"
            raise ConfigError(f"{setting}: {spec} but CUDA is not usable: {why}; set {setting}=auto or cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"{setting}: {spec} but only {count} GPU(s) are visible (cuda:0..cuda:{count - 1})")
    return device


def describe_device(device: torch.device) -> str:
    """`cuda:0 (NVIDIA H200, 139 GiB, torch 2.x built for CUDA 12.y)` / `cpu (16 threads, torch 2.x ...)`."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.0f} GiB, {torch_build()})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads, {torch_build()})"
    return str(device)


def device_of(cfg: dict) -> torch.device:
    """The device a run's config asks for (train.device), logged: every prediction says where it runs."""
    device = resolve_device(cfg["train"]["device"])
    log.info("device: %s", describe_device(device))
    return device


def tune_kernels(device: torch.device) -> None:
    """Per-device speed switches shared by training and scripts/bench.py (so the bench times what trains).

    cudnn.benchmark: autotune each convolution once per input shape and keep the fastest algorithm. Training
    feeds a handful of fixed shapes (the batch at each stage size, the ragged last validation batch), so the
    one-off search pays back within an epoch. Results stay deterministic only up to the algorithm choice,
    which is why seeding leaves `cudnn.deterministic` off.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
