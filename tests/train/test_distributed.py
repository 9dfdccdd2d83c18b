"""Rank helpers of DDP training (train/distributed.py): environment, config refusals; a real 2-process gloo group
(slow). The 2-process training run itself: tests/test_train_ddp.py."""

from __future__ import annotations

import socket

import pytest
import torch

from fashiontag.core.config import load_config
from fashiontag.core.errors import ConfigError
from fashiontag.train import distributed as dist

DDP_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@pytest.fixture
def single(monkeypatch):
    for name in DDP_ENV:
        monkeypatch.delenv(name, raising=False)


def test_single_process_is_rank_zero_and_every_helper_is_a_no_op(single):
    assert (dist.world_size(), dist.rank(), dist.local_rank()) == (1, 0, 0)
    assert dist.is_main() and not dist.is_distributed()
    dist.barrier()
    assert dist.broadcast({"lr": 0.1}) == {"lr": 0.1}
    calls = []
    assert dist.rank0_first(lambda x: calls.append(x) or x * 2, 21) == 42
    assert calls == [21]
    assert dist.seed_offset() == 0
    assert dist.rank_device(torch.device("cuda")) == torch.device("cuda")
    with dist.fit_ctx(object(), torch.device("cpu")) as learn:
        assert learn is not None
    dist.setup(load_config(None, ["train.feature_cache=true"]))  # nothing to refuse without DDP
    assert not (torch.distributed.is_available() and torch.distributed.is_initialized())


def test_ranks_read_from_the_launcher_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert dist.is_distributed() and not dist.is_main()
    assert (dist.world_size(), dist.rank(), dist.local_rank()) == (4, 2, 1)
    assert dist.rank_device(torch.device("cuda")) == torch.device("cuda", 1)
    assert dist.rank_device(torch.device("cpu")) == torch.device("cpu")
    assert dist.seed_offset() == 2000


def test_solo_hides_the_world_size_from_fastai_and_restores_it(monkeypatch):
    from fastai.torch_core import num_distrib

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with dist.solo():
        assert num_distrib() == 1 and not dist.is_distributed()
    assert num_distrib() == 2
    with pytest.raises(RuntimeError), dist.solo():
        raise RuntimeError("boom")
    assert num_distrib() == 2


def test_ddp_refuses_feature_cache_gpus_and_separate_mode():
    ok = load_config(None, [])
    dist.check_config(ok)
    with pytest.raises(ConfigError, match="feature_cache"):
        dist.check_config(load_config(None, ["train.feature_cache=true"]))
    with pytest.raises(ConfigError, match="--gpus 2"):
        dist.check_config(ok, gpus=2)
    with pytest.raises(ConfigError, match="separate"):
        dist.check_config(load_config(None, ["worn.mode=separate"]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, marker: str, results) -> None:
    import os
    from pathlib import Path

    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    dist.setup(load_config(None, ["train.device=cpu"]))
    got = {"backend": torch.distributed.get_backend(), "lr": dist.broadcast((0.01 * (rank + 1), f"rank {rank}"))}

    def first():  # rank 0 writes; rank 1 runs only after the barrier, so it must see the file
        path = Path(marker)
        if dist.is_main():
            path.write_text("written by rank 0")
        return path.read_text()

    got["first"] = dist.rank0_first(first)
    from fastai.distributed import DistributedDL

    got["idxs"] = DistributedDL._broadcast(None, [rank * 10 + i for i in range(3)], 0)  # the gloo-safe patch
    dist.barrier()
    results[rank] = got


@pytest.mark.slow  # two spawned interpreters importing torch + fastai: ~20 s on a small CPU
def test_two_process_gloo_group_broadcasts_rank0_values(tmp_path):
    import torch.multiprocessing as mp

    results = mp.Manager().dict()
    mp.spawn(_worker, args=(_free_port(), str(tmp_path / "marker"), results), nprocs=2, join=True)
    for rank in (0, 1):
        got = results[rank]
        assert got["backend"] == "gloo"
        assert got["lr"] == (0.01, "rank 0")
        assert got["first"] == "written by rank 0"
        assert got["idxs"] == [0, 1, 2]
