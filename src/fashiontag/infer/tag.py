"""`tag`: the e-commerce use. For each image and each key of a run, the top values and probabilities,
fold-averaged (optionally with TTA), as a table, JSON or CSV.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fashiontag.core.config import apply_overrides
from fashiontag.core.devices import device_of
from fashiontag.core.errors import FashiontagError
from fashiontag.core.skips import SkipReport
from fashiontag.data.images import is_image_file
from fashiontag.data.worn_modes import require_plain_mode
from fashiontag.fashionai.runs import RunError, fold_dirs, key_values, list_keys, run_config
from fashiontag.infer.predict import predict_fold
from fashiontag.models.fold_models import iter_fold_models

log = logging.getLogger(__name__)

FORMATS = ("table", "json", "csv")
TAG_COLUMNS = ["image", "key", "rank", "value", "prob"]


def collect_images(inputs: list[str | Path]) -> list[Path]:
    """Files as given, folders searched recursively for images (sorted); missing inputs are an error."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += sorted(p for p in item.rglob("*") if is_image_file(p))
        elif item.exists():
            found.append(item)
        else:
            raise FashiontagError(f"{item}: no such file or folder")
    if not found:
        raise FashiontagError(f"no images found in {', '.join(map(str, inputs))}")
    return list(dict.fromkeys(found))


def top_values(images: list[str], key: str, probs: np.ndarray, values: list[str], top: int) -> pd.DataFrame:
    """Long table (image, key, rank, value, prob) of each row's `top` most probable values."""
    top = max(1, min(top, probs.shape[1]))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    rows = [(img, key, r + 1, values[j], float(probs[i, j]))
            for i, img in enumerate(images) for r, j in enumerate(order[i])]
    return pd.DataFrame(rows, columns=TAG_COLUMNS)


class _Progress:
    """A bar on a terminal (stderr, so piped output stays clean), one log line per step otherwise."""

    def __init__(self, total: int, bar: bool):
        self.total, self.done, self.bar = total, 0, None
        if bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="tagging", unit="model", file=sys.stderr)

    def step(self, what: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(what)
            self.bar.update(1)
        else:
            log.info("tagging %d/%d: %s", self.done, self.total, what)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def tag_images(inputs: list[str | Path], run_dir: str | Path, top: int = 3, tta: bool = False,
               skip_bad: bool = False, cfg: dict | None = None, overrides: list[str] | None = None,
               progress: str = "auto") -> tuple[pd.DataFrame, SkipReport]:
    """Tag images with every key of a CNN run; returns the long tag table and the unreadable images.

    Unreadable images are counted first; without `skip_bad` that stops the command (naming them).
    """
    run_dir = Path(run_dir)
    paths = collect_images(inputs)
    for key in list_keys(run_dir):  # crop/separate runs need detection / group merging (data/worn_modes.py)
        require_plain_mode(run_config(run_dir / key, cfg, overrides), "tag")
    keys = [k for k in list_keys(run_dir) if fold_dirs(run_dir / k)]
    if not keys:
        raise RunError(f"{run_dir} has no trained fold models (blends and stacks cannot tag images; "
                       "use the CNN run, made by `fashiontag train`)")
    n_steps = sum(len(fold_dirs(run_dir / k)) for k in keys)
    bar = progress == "bar" or (progress == "auto" and sys.stderr.isatty())
    meter = _Progress(n_steps, bar)
    skips = SkipReport(skip=True)
    names = [str(p) for p in paths]
    tables = []
    try:
        for key in keys:
            kcfg = run_config(run_dir / key, cfg, overrides)
            kcfg = apply_overrides(kcfg, [f"tta.enabled={'true' if tta else 'false'}"])
            device = device_of(kcfg)
            fold_probs = []
            for k, _fdir, model, pre in iter_fold_models(run_dir / key, device):
                first = not tables and not fold_probs
                fold_probs.append(predict_fold(model, pre, names, kcfg, device, skips if first else SkipReport(True)))
                if first and len(skips) and not skip_bad:
                    listed = "; ".join(f"{r['file']}: {r['reason']}" for r in skips.rows[:5])
                    raise FashiontagError(f"{len(skips)} of {len(paths)} image(s) cannot be read ({listed}); "
                                          "pass --skip-bad to tag the others")
                meter.step(f"{key} fold {k}")
            probs = np.mean(fold_probs, axis=0)
            ok = np.isfinite(probs).all(axis=1)
            values = key_values(run_dir / key, probs.shape[1])
            tables.append(top_values([n for n, g in zip(names, ok, strict=True) if g], key, probs[ok], values, top))
    finally:
        meter.close()
    if len(skips):
        log.warning("skipped %d unreadable image(s): %s", len(skips), ", ".join(r["file"] for r in skips.rows[:10]))
    df = pd.concat(tables, ignore_index=True)
    # Image-major order: all keys of one image together, as a catalogue would show them.
    order = {n: i for i, n in enumerate(names)}
    df = df.sort_values(by=["image", "key", "rank"], key=lambda s: s.map(order) if s.name == "image" else s,
                        kind="stable").reset_index(drop=True)
    return df, skips


def format_tags(df: pd.DataFrame, fmt: str = "table") -> str:
    """The tag table as text: `table` (aligned, one line per image and key), `json` or `csv`."""
    if fmt == "csv":
        return df.to_csv(index=False, float_format="%.4f")
    if fmt == "json":
        out = []
        for image, part in df.groupby("image", sort=False):
            tags = {key: [{"value": r.value, "prob": round(float(r.prob), 4)} for r in kp.itertuples()]
                    for key, kp in part.groupby("key", sort=False)}
            out.append({"image": image, "tags": tags})
        return json.dumps(out, indent=2) + "\n"
    if fmt != "table":
        raise FashiontagError(f"--format must be one of {FORMATS}, got {fmt!r}")
    lines = []
    for (image, key), part in df.groupby(["image", "key"], sort=False):
        tags = " | ".join(f"{r.value} {r.prob:.2f}" for r in part.itertuples())
        lines.append((str(image), str(key), tags))
    w_img = max([len("image")] + [len(a) for a, _, _ in lines])
    w_key = max([len("key")] + [len(b) for _, b, _ in lines])
    text = [f"{'image':<{w_img}}  {'key':<{w_key}}  top values"]
    text += [f"{a:<{w_img}}  {b:<{w_key}}  {c}" for a, b, c in lines]
    return "\n".join(text) + "\n"
