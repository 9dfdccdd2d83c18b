"""TTA prediction of a partially fine-tuned fold (`train.trainable_stages`): only the trained tail + head run.

The frozen prefix's activations of every TTA view come from the activation cache (models/activations.py):
computed by the first fold that needs them, read by the others, and for out-of-fold photos read from the
rows training already stored. The result is what `infer.predict.predict_fold` gives with the whole model,
up to the float16 rounding of the stored activations.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fashiontag.core.skips import SkipReport
from fashiontag.models.activations import path_activations, run_on_rows, view_name
from fashiontag.models.tta import combine_views, view_plan


def predict_fold_partial(model: nn.Sequential, pre: dict, paths: list[str], cfg: dict, device: torch.device,
                         skips: SkipReport, crops=None) -> np.ndarray:
    """(len(paths), n) TTA probabilities of one fold model; rows of unreadable images are NaN."""
    tta = cfg["tta"]
    views = [view_name(v) for v in view_plan(tta, int(cfg["seed"]))]
    tail, acts, kept = path_activations(model, pre, paths, cfg, device, skips, crops, views)
    tail = tail.to(device).to(memory_format=torch.channels_last)
    probs = np.stack([run_on_rows(lambda x: F.softmax(tail(x).float(), dim=-1), acts[v], kept, device)
                      for v in views]).astype(np.float64)
    out = np.full((len(paths), int(pre["n_out"])), np.nan)
    out[kept] = combine_views(probs, tta["mode"])
    return out
