"""Every finished fold model of a run's key, loaded one at a time (prediction, tagging, stacking)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from fashiontag.fashionai.runs import RunError, fold_dirs, key_folds, require_files
from fashiontag.models.build import load_fold_model

log = logging.getLogger(__name__)


def iter_fold_models(key_dir: str | Path, device: torch.device) -> Iterator[tuple[int, Path, nn.Module, dict]]:
    """(k, fold_dir, model, preprocess) for every finished fold, loaded one at a time."""
    key_dir = Path(key_dir)
    folds = fold_dirs(key_dir)
    if not folds:
        raise RunError(f"{key_dir} has no fold_<k> directories (made by the training step)", ["train"])
    expected = sorted(set(key_folds(key_dir)["fold"])) if (key_dir / "folds.csv").exists() else list(folds)
    absent = [k for k in expected if k not in folds]
    if absent:
        log.warning("%s: folds %s are not trained; predictions average the %d trained fold(s)",
                    key_dir.name, absent, len(folds))
    for k, fdir in folds.items():
        require_files(fdir, ["preprocess.json", "model.pth", "done.json"], key_dir)
        model, pre = load_fold_model(fdir, device)
        if pre.get("key") not in (None, key_dir.name):
            raise RunError(f"{fdir}/preprocess.json is for key {pre.get('key')!r}, not {key_dir.name!r}")
        yield k, fdir, model, pre
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
