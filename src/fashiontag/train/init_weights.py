"""Start a fold from another run's whole model: the Fashion-MNIST write-ups' augmentation phase.

`model.weights` seeds only the timm body (the head is built fresh, as for ImageNet weights). The write-ups'
second phase instead keeps fitting the same Keras model, classifier included, on augmented batches.
`StartFrom(model.pth)`, passed to `train.runner.train_run(extra_cbs=...)`, loads that model.pth (body and
head) into the Learner's model when a fold starts training for the first time; a resumed fold (its log.csv
already has epochs) keeps the weights its checkpoint restored.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch
from fastai.callback.core import Callback

from fashiontag.core.errors import DataError

log = logging.getLogger(__name__)


class StartFrom(Callback):
    order = -20  # before anything that reads the weights

    def __init__(self, model_pth: str | Path):
        self.model_pth = Path(model_pth)
        self.loaded = False

    def before_fit(self) -> None:
        if self.loaded or hasattr(self.learn, "lr_finder") or (Path(self.learn.path) / "log.csv").exists():
            return
        try:
            state = torch.load(self.model_pth, map_location="cpu", weights_only=True)
            self.learn.model.load_state_dict(state)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            raise DataError(self.model_pth, f"cannot start from this model: {exc}") from None
        self.loaded = True
        log.info("starting from %s (body and head)", self.model_pth)
