"""resolve_device: `auto` never falls back to the CPU silently when a GPU is there but unusable; an explicit
`cuda` without CUDA is one ConfigError line; tune_kernels switches cudnn autotuning on for CUDA only."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from fashiontag.core import devices
from fashiontag.core.errors import ConfigError


@pytest.fixture
def no_gpu(monkeypatch, tmp_path):
    """A machine without any NVIDIA GPU, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch._C, "_cuda_getDeviceCount", lambda: 0, raising=False)
    monkeypatch.setattr(devices.shutil, "which", lambda name: None)
    monkeypatch.setattr(devices, "DEV_NODE", tmp_path / "nvidia0")  # absent
    return monkeypatch


def test_auto_is_the_cpu_on_a_machine_without_a_gpu(no_gpu):
    assert devices.resolve_device("auto") == torch.device("cpu")
    assert devices.resolve_device(None) == torch.device("cpu")
    assert devices.resolve_device("cpu") == torch.device("cpu")


def test_auto_is_cuda_when_cuda_works(no_gpu):
    no_gpu.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve_device("auto") == torch.device("cuda")


def _driver_error():
    raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version")


@pytest.mark.parametrize("sign, expected", [
    ("count", "device_count() is 1"),
    ("driver", "the CUDA driver failed: CUDA driver version is insufficient"),
    ("smi", "nvidia-smi is installed"),
    ("node", "nvidia0 exists"),
])
def test_auto_stops_with_one_line_when_a_gpu_is_unusable(no_gpu, tmp_path, sign, expected):
    if sign == "count":
        no_gpu.setattr(torch.cuda, "device_count", lambda: 1)
    elif sign == "driver":
        no_gpu.setattr(torch._C, "_cuda_getDeviceCount", _driver_error, raising=False)
    elif sign == "smi":
        no_gpu.setattr(devices.shutil, "which", lambda name: "/usr/bin/nvidia-smi" if name == "nvidia-smi" else None)
    else:
        node = tmp_path / "dev" / "nvidia0"
        node.parent.mkdir()
        node.touch()
        no_gpu.setattr(devices, "DEV_NODE", node)
    with pytest.raises(ConfigError) as err:
        devices.resolve_device("auto")
    message = str(err.value)
    assert "\n" not in message
    assert expected in message and "train.device=cpu" in message and "torch.cuda.is_available() is False" in message
    # Asking for the CPU explicitly is always honoured.
    assert devices.resolve_device("cpu") == torch.device("cpu")


def test_explicit_cuda_without_cuda_is_one_config_error_line(no_gpu):
    for spec in ("cuda", "cuda:0", "CUDA:1"):
        with pytest.raises(ConfigError, match=r"^train.device: .* but CUDA is not usable: no NVIDIA GPU found"):
            devices.resolve_device(spec)
    with pytest.raises(ConfigError, match="split.device: cuda"):
        devices.resolve_device("cuda", setting="split.device")


def test_cuda_index_beyond_the_visible_gpus_and_garbage_are_refused(no_gpu):
    no_gpu.setattr(torch.cuda, "is_available", lambda: True)
    no_gpu.setattr(torch.cuda, "device_count", lambda: 2)
    assert devices.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match=r"cuda:2 but only 2 GPU\(s\) are visible"):
        devices.resolve_device("cuda:2")
    with pytest.raises(ConfigError, match="'gpu0' is not a device"):
        devices.resolve_device("gpu0")


def test_train_with_cuda_on_a_cpu_machine_exits_2_with_one_line(no_gpu, tmp_path, make_fashionai_root, capsys):
    from fashiontag.cli import main
    from helpers.training import tiny_overrides, tiny_root

    root = tiny_root(make_fashionai_root, tmp_path)
    sets = [a for s in tiny_overrides(tmp_path, "train.device=cuda") for a in ("--set", s)]
    capsys.readouterr()
    code = main(["train", "--data", str(root), "--folds", "0", *sets])
    assert code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "train.device: cuda but CUDA is not usable" in errors[0], err[-2000:]
    assert "Traceback" not in err


def test_device_of_logs_where_it_runs(no_gpu, caplog):
    with caplog.at_level(logging.INFO, logger="fashiontag.core.devices"):
        assert devices.device_of({"train": {"device": "auto"}}) == torch.device("cpu")
    assert any(r.getMessage().startswith("device: cpu (") for r in caplog.records)


def test_tune_kernels_turns_cudnn_autotuning_on_for_cuda_only(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    devices.tune_kernels(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False
    devices.tune_kernels(torch.device("cuda"))
    assert torch.backends.cudnn.benchmark is True


def test_no_gpu_fixture_really_hides_this_machine(no_gpu):
    assert devices.gpu_signs() == [] and not Path(devices.DEV_NODE).exists()
