"""StartFrom: a fresh fold starts from another run's whole model (body and head); a resumed one does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fashiontag.core.config import load_config
from fashiontag.core.errors import DataError
from fashiontag.data.tensor_images import TensorImages
from fashiontag.data.tensor_loader import tensor_dataloaders
from fashiontag.models.build import build_model, model_state
from fashiontag.train.init_weights import StartFrom
from fashiontag.train.learner import make_learner

HEAD = {"hidden": [], "dropout": 0.1, "pool": "avg"}
CPU = torch.device("cpu")


def learner(tmp_path: Path, seed: int):
    torch.manual_seed(seed)
    model, tcfg = build_model("fmnist_cnn1", 10, HEAD, {"pretrained": False})
    pixels = np.random.default_rng(0).integers(0, 256, (24, 28, 28), dtype=np.uint8)
    images = TensorImages(torch.from_numpy(pixels[:, None]), np.ones(24, bool), tmp_path / "x.npy")
    dls = tensor_dataloaders(images, np.eye(10, dtype=np.float32)[np.arange(24) % 10], range(16), range(16, 24), 28,
                             tcfg["mean"], tcfg["std"], None, 8, CPU)
    train = load_config("fmnist_cnn1", ["train.device=cpu"])["train"]
    return make_learner(model, dls, train, tmp_path, CPU)


def weights_at_fit_start(learn, cb: StartFrom) -> dict:
    seen = {}

    def grab(learner) -> None:  # runs right after StartFrom, before any step
        seen.update({k: v.clone() for k, v in learner.model.state_dict().items()})

    from fastai.callback.core import Callback

    class Grab(Callback):
        order = -19

        def before_fit(self):
            grab(self.learn)

    learn.fit(1, lr=1e-3, cbs=[cb, Grab()])
    return seen


def test_start_from_loads_body_and_head_once(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    source, _ = build_model("fmnist_cnn1", 10, HEAD, {"pretrained": False})
    torch.nn.init.constant_(source[1][-1].weight, 0.5)  # a recognisable classifier
    pth = tmp_path / "model.pth"
    torch.save(model_state(source), pth)
    learn = learner(tmp_path / "fresh", seed=1)
    seen = weights_at_fit_start(learn, StartFrom(pth))
    for key, value in model_state(source).items():
        assert torch.equal(seen[key], value), key
    # a resumed fold (its log.csv has epochs) keeps its own weights
    resumed = learner(tmp_path / "resumed", seed=2)
    (tmp_path / "resumed").mkdir(exist_ok=True)
    (tmp_path / "resumed" / "log.csv").write_text("epoch\n1\n")
    before = {k: v.clone() for k, v in resumed.model.state_dict().items()}
    seen = weights_at_fit_start(resumed, StartFrom(pth))
    assert all(torch.equal(seen[k], before[k]) for k in before)


def test_start_from_names_a_bad_file(tmp_path: Path) -> None:
    (tmp_path / "bad.pth").write_bytes(b"not a model")
    learn = learner(tmp_path / "run", seed=0)
    with pytest.raises(DataError, match="bad.pth: cannot start from this model"):
        learn.fit(1, lr=1e-3, cbs=[StartFrom(tmp_path / "bad.pth")])
