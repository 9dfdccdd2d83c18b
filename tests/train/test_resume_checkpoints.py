"""Checkpoint writing and optimizer placement, without training: the device mapping of restored optimizer
state (meta tensors stand in for a GPU), the write cadence on a fake clock, background writes that are
snapshots, and a failed write that leaves the previous checkpoint in place."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from fastai.optimizer import Adam, OptimWrapper
from torch import nn

from fashiontag.core.errors import FashiontagError
from fashiontag.train import checkpoints
from fashiontag.train.checkpoints import Checkpointer, CheckpointWriter, snapshot
from fashiontag.train.resume import FoldState, OptStateFollowsParams, load_checkpoint, state_to_param_devices


def meta_model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).to("meta")


def test_torch_optimizer_state_moves_to_its_parameters_device():
    model = meta_model()
    opt = OptimWrapper(opt=torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True))
    for p in model.parameters():  # as loaded from a checkpoint onto the CPU
        opt.opt.state[p] = {"step": torch.tensor(3.0), "exp_avg": torch.zeros(p.shape),
                            "exp_avg_sq": torch.zeros(p.shape)}
    state_to_param_devices(opt)
    for p in model.parameters():
        state = opt.opt.state[p]
        assert state["exp_avg"].device == p.device == state["exp_avg_sq"].device == torch.device("meta")
        assert state["step"].device.type == "cpu", "torch keeps `step` on the CPU unless fused or capturable"
        assert float(state["step"]) == 3.0


def test_fastai_optimizer_state_moves_to_its_parameters_device():
    model = meta_model()
    opt = Adam(list(model.parameters()), lr=1e-3)
    for p in model.parameters():
        opt.state[p] = {"grad_avg": torch.zeros(p.shape), "sqr_avg": torch.zeros(p.shape), "step": 3}
    state_to_param_devices(opt)
    assert all(s["grad_avg"].device.type == s["sqr_avg"].device.type == "meta" for s in opt.state.values())


def test_callback_moves_the_state_at_the_start_of_every_fit():
    model = meta_model()
    opt = Adam(list(model.parameters()), lr=1e-3)
    p = next(iter(model.parameters()))
    opt.state[p] = {"grad_avg": torch.zeros(p.shape)}
    cb = OptStateFollowsParams()
    cb.learn = SimpleNamespace(opt=opt)
    cb.before_fit()
    assert opt.state[p]["grad_avg"].device.type == "meta"
    assert OptStateFollowsParams.order == -9, "after TrainEvalCallback (-10) has moved the model"


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def fake_learn(epoch: int, n_epoch: int) -> SimpleNamespace:
    return SimpleNamespace(model=nn.Linear(2, 2), opt=None, epoch=epoch, n_epoch=n_epoch)


def test_checkpoints_at_phase_ends_and_after_the_interval(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(checkpoints, "snapshot", lambda learn, state, loaders, moments: (state.epochs_done, moments))
    monkeypatch.setattr(checkpoints, "atomic_save_torch", lambda path, payload: written.append(payload))
    clock = Clock()
    with CheckpointWriter(tmp_path, 600, {}, clock=clock) as writer:
        cb = Checkpointer(writer, FoldState())
        # a 6-epoch phase; its epochs end at these times (s)
        for epoch, t in enumerate((100.0, 300.0, 650.0, 700.0, 1200.0, 1260.0)):
            clock.t = t
            cb.learn = fake_learn(epoch, 6)
            cb.after_epoch()
    # epoch 3: 600 s since the writer started; epoch 6: the phase end (without the moments), although only
    # 60 s after the previous interval checkpoint (epoch 5 at 1200 s: 550 s after epoch 3's, not due).
    assert written == [(3, True), (6, False)]


def test_background_write_is_a_snapshot_and_loads(tmp_path):
    learn = SimpleNamespace(model=nn.Linear(2, 2), opt=None)
    state = FoldState(phase=1, epochs_done=2, lr=0.01, rows=[{"epoch": 1}])
    with CheckpointWriter(tmp_path, 0, {}) as writer:
        writer.save(learn, state)
        before = learn.model.weight.detach().clone()
        with torch.no_grad():
            learn.model.weight.add_(1.0)  # training goes on while the thread writes
        state.rows.append({"epoch": 2})
    ckpt = load_checkpoint(tmp_path)
    assert torch.equal(ckpt["model"]["weight"], before)
    assert ckpt["state"]["rows"] == [{"epoch": 1}] and ckpt["state"]["epochs_done"] == 2
    assert ckpt["opt"] is None and ckpt["grads"] == [False, False] and set(ckpt["rng"]) >= {"torch", "python"}


def test_a_failed_write_keeps_the_previous_checkpoint_and_is_reported(tmp_path, monkeypatch):
    learn = SimpleNamespace(model=nn.Linear(2, 2), opt=None)
    with CheckpointWriter(tmp_path, 0, {}) as writer:
        writer.save(learn, FoldState(epochs_done=1))
    real_save = torch.save

    def dies_halfway(obj, fh):
        real_save(obj, fh)
        fh.truncate(100)
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", dies_halfway)
    writer = CheckpointWriter(tmp_path, 0, {})
    writer.save(learn, FoldState(epochs_done=2))
    with pytest.raises(FashiontagError, match=r"last\.pth: checkpoint not written .*No space left"):
        writer.wait()
    assert load_checkpoint(tmp_path)["state"]["epochs_done"] == 1
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["last.pth"], "no temporary file left"


def test_snapshot_copies_optimizer_state_and_drops_moments_at_phase_ends():
    model = nn.Linear(3, 2)
    opt = OptimWrapper(opt=torch.optim.AdamW(model.parameters(), lr=1e-3))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    learn = SimpleNamespace(model=model, opt=opt)
    full = snapshot(learn, FoldState(), {})
    avg = next(iter(opt.opt.state.values()))["exp_avg"]
    assert full["opt"]["state"] and all(
        s["exp_avg"].data_ptr() != avg.data_ptr() for s in full["opt"]["state"].values())
    light = snapshot(learn, FoldState(), {}, moments=False)
    assert light["opt"]["state"] == {} and light["opt"]["param_groups"] == full["opt"]["param_groups"]
    assert checkpoints.host_copy((1, [torch.ones(1)]))[1][0].device.type == "cpu"
