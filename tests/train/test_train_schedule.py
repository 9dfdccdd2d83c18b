"""The schedule: SGDR cycles of 1, 2, 4 epochs as fastai runs them, three layer groups at [lr/100, lr, lr]."""

from __future__ import annotations

import numpy as np
import pytest
from fastai.callback.core import Callback

from fashiontag.core.errors import ConfigError
from fashiontag.train.schedule import Phase, plan_phases, prepare_phase, run_phase, sgdr_n_cycles
from helpers.training import tiny_learner

BASE = {"stages": [32, 48], "frozen_epochs": 1, "unfrozen_epochs": 7, "frozen_schedule": "one_cycle",
        "schedule": "sgdr", "sgdr_cycle_len": 1, "sgdr_cycle_mult": 2, "stage_lr_mult": 0.5,
        "lr_ratios": [0.01, 1.0, 1.0], "pct_start": 0.25}


class GroupLrs(Callback):
    """Records every layer group's lr at each training batch."""

    order = 65  # after the ParamScheduler (60) set this batch's rates

    def before_fit(self):
        self.lrs = []

    def before_batch(self):
        if self.training:
            self.lrs.append([h["lr"] for h in self.opt.hypers])


def test_plan_phases_and_sgdr_arithmetic():
    phases = plan_phases(BASE)
    assert [(p.size, p.frozen, p.epochs, p.schedule) for p in phases] == [
        (32, True, 1, "one_cycle"), (32, False, 7, "sgdr"), (48, True, 1, "one_cycle"), (48, False, 7, "sgdr")]
    assert [p.lr_mult for p in phases] == [1.0, 1.0, 0.5, 0.5]
    assert sgdr_n_cycles(7, 1, 2) == 3 and sgdr_n_cycles(3, 1, 2) == 2 and sgdr_n_cycles(6, 2, 2) == 2
    with pytest.raises(ConfigError, match="cannot add up to 5"):
        plan_phases({**BASE, "unfrozen_epochs": 5})
    with pytest.raises(ConfigError, match="nothing to train"):
        plan_phases({**BASE, "frozen_epochs": 0, "unfrozen_epochs": 0})
    with pytest.raises(ConfigError, match="schedule"):
        plan_phases({**BASE, "schedule": "cosine"})


def test_sgdr_restarts_after_1_2_and_4_epochs(tmp_path):
    learn, cfg = tiny_learner(tmp_path, n_train=8, bs=4)  # 2 batches per epoch
    assert len(learn.dls.train) == 2
    phase = Phase(0, 0, 32, False, 7, "sgdr", 1.0)
    prepare_phase(learn, phase)
    rec = GroupLrs()
    run_phase(learn, phase, 1e-3, {**cfg["train"], **BASE}, cbs=[rec])
    head = np.array([lrs[-1] for lrs in rec.lrs])
    assert len(head) == 14
    restarts = [i for i in range(1, len(head)) if head[i] > head[i - 1]]
    # Expected at the starts of epochs 1 and 3 (batches 2 and 6). fastai's combine_scheds compares the
    # float training fraction with float cycle edges, so a restart may land one batch late (3/7 here).
    assert len(restarts) == 2, f"three SGDR cycles expected, lrs {head}"
    assert restarts[0] - 2 in (0, 1) and restarts[1] - 6 in (0, 1), f"restarts at batches {restarts}"
    assert head[0] == pytest.approx(1e-3) and head[2] == pytest.approx(1e-3), "cycles start at lr_max"
    assert max(head[6], head[7]) > 0.9e-3
    for a, b in ((0, restarts[0]), (restarts[0], restarts[1]), (restarts[1], 14)):  # cosine decay inside
        assert (np.diff(head[a:b]) < 0).all()
    assert head[restarts[1] - 1] < 0.2e-3 and head[-1] < 0.05e-3, "each cycle anneals towards 0"
    # fastai's recorder saw the same schedule
    np.testing.assert_allclose(learn.recorder.hps["lr"], head)


def test_unfrozen_phase_trains_three_groups_at_differential_rates(tmp_path):
    learn, cfg = tiny_learner(tmp_path)
    learn.create_opt()
    groups = learn.opt.param_lists
    assert len(groups) == 3 and all(len(g) for g in groups)
    body = {id(p) for p in learn.model[0].parameters()}
    head = {id(p) for p in learn.model[1].parameters()}
    assert {id(p) for p in groups[0]} | {id(p) for p in groups[1]} == body
    assert {id(p) for p in groups[2]} == head
    # the early group holds the stem: resnet's conv1 is in it, layer4 is not
    early = {id(p) for p in groups[0]}
    assert id(learn.model[0].model.conv1[0].weight) in early
    assert id(learn.model[0].model.layer4[0].conv1.weight) not in early

    phase = Phase(0, 0, 32, False, 1, "sgdr", 1.0)
    prepare_phase(learn, phase)
    rec = GroupLrs()
    run_phase(learn, phase, 1e-2, {**cfg["train"], **BASE}, cbs=[rec])
    assert rec.lrs[0] == pytest.approx([1e-4, 1e-2, 1e-2])  # [lr/100, lr, lr]
    assert all(p.requires_grad for p in learn.model.parameters())


def test_frozen_phase_trains_only_the_head(tmp_path):
    learn, cfg = tiny_learner(tmp_path)
    phase = Phase(0, 0, 32, True, 1, "one_cycle", 1.0)
    prepare_phase(learn, phase)
    conv = learn.model[0].model.layer4[0].conv1.weight
    before = conv.detach().clone()
    head_before = learn.model[1][-1].weight.detach().clone()
    run_phase(learn, phase, 1e-2, {**cfg["train"], **BASE})
    assert not conv.requires_grad and learn.model[1][-1].weight.requires_grad
    assert np.allclose(before.numpy(), conv.detach().numpy()), "frozen body weights must not move"
    assert not np.allclose(head_before.numpy(), learn.model[1][-1].weight.detach().numpy())


def test_train_bn_false_keeps_the_frozen_body_batchnorm_statistics(tmp_path):
    learn, cfg = tiny_learner(tmp_path, train_over={"train_bn": False})
    phase = Phase(0, 0, 32, True, 1, "one_cycle", 1.0)
    prepare_phase(learn, phase)
    bn = learn.model[0].model.bn1
    mean, weight = bn.running_mean.clone(), bn.weight.detach().clone()
    run_phase(learn, phase, 1e-2, {**cfg["train"], **BASE})
    assert np.allclose(mean.numpy(), bn.running_mean.numpy()) and np.allclose(weight.numpy(), bn.weight.detach().numpy())

    learn2, cfg2 = tiny_learner(tmp_path / "default")  # fastai's default trains BatchNorm even when frozen
    prepare_phase(learn2, phase)
    bn2 = learn2.model[0].model.bn1
    mean2 = bn2.running_mean.clone()
    run_phase(learn2, phase, 1e-2, {**cfg2["train"], **BASE})
    assert not np.allclose(mean2.numpy(), bn2.running_mean.numpy())
