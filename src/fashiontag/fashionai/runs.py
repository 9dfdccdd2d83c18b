"""Run directories: find a run's keys and folds, check its files, load its probability tables.

Every stage after training reads other runs' files (predict, stack, ensemble, report, submit, tag), so
the checks live here once: a missing file names the kind of step that makes it (RunError.steps; the command
line adds the command to run), a table with wrong columns or rows names the file and line, and runs trained
on different fold files are refused.

A key directory (`runs/<exp>/<key>/`) of a derived run (stack, blend) records what it is in its
config.yaml under `run:` ({kind, inputs, values}); a training run has no such entry.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fashiontag.core.config import apply_overrides, load_yaml, save_config, with_base_defaults
from fashiontag.core.errors import DataError, FashiontagError
from fashiontag.core.files import atomic_write_csv, atomic_write_json, read_csv_checked, read_json
from fashiontag.core.identity import code_identity
from fashiontag.fashionai.fold_file import read_fold_file
from fashiontag.fashionai.keys import OFFICIAL_KEYS
from fashiontag.fashionai.probs import PREFIX, prob_columns, probs_of

log = logging.getLogger(__name__)

FOLD_RE = re.compile(r"^fold_(\d+)$")
# The kinds of step that make a run's files, as messages name them.
STEPS = {"train": "training", "predict": "prediction", "stack": "stacking", "blend": "blending"}
# Which step makes each file, by the kind of run (with a note on the setting it needs), for "missing file"
# messages; "*" is any other file of that kind of run.
MADE_BY: dict[str, dict[str, tuple[str, str]]] = {
    "train": {
        **{name: ("train", "") for name in ("oof.csv", "cv.json", "config.yaml", "folds.csv", "model.pth",
                                            "preprocess.json", "done.json")},
        "test.csv": ("predict", ""),
        "oof_tta.csv": ("predict", "with tta.on_oof=true"),
        "cv_tta.json": ("predict", "with tta.on_oof=true"),
    },
    "stack": {"*": ("stack", "")},
    "blend": {"*": ("blend", "")},
}
# Rows of a probability table must sum to 1 within this (CSV rounding of p_i).
SUM_TOLERANCE = 1e-3


class RunError(FashiontagError):
    """A run directory that is missing, incomplete or inconsistent with another run.

    `steps`: the kinds of step (keys of STEPS) whose output is missing, in order; empty when no step would
    help. The command line turns them into the commands to run.
    """

    def __init__(self, message: str, steps: list[str] | tuple[str, ...] = ()):
        super().__init__(message)
        self.steps = list(dict.fromkeys(steps))


def resolve_run(name: str | Path, runs_dir: str | Path = "runs") -> Path:
    """A run given as a path, or as a name under `runs_dir`."""
    path = Path(name)
    if path.is_dir():
        return path
    candidate = Path(runs_dir) / path
    if candidate.is_dir():
        return candidate
    raise RunError(f"run not found: {name} (looked for {path} and {candidate}); train or build it first")


def is_key_dir(path: Path) -> bool:
    if not path.is_dir():
        return False
    names = {"config.yaml", "oof.csv", "test.csv", "cv.json"}
    return any((path / n).exists() for n in names) or any(FOLD_RE.match(p.name) for p in path.iterdir())


def list_keys(run_dir: str | Path) -> list[str]:
    """Keys of a run: its subdirectories that hold run files (sorted)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run not found: {run_dir}")
    return sorted(p.name for p in run_dir.iterdir() if is_key_dir(p))


def fold_dirs(key_dir: str | Path) -> dict[int, Path]:
    """fold index -> fold_<k> directory, in fold order."""
    key_dir = Path(key_dir)
    found = {}
    for p in key_dir.iterdir() if key_dir.is_dir() else []:
        m = FOLD_RE.match(p.name)
        if m and p.is_dir():
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def run_info(key_dir: str | Path) -> dict[str, Any]:
    """The `run:` entry of a key's config.yaml ({} for a training run or a missing config)."""
    path = Path(key_dir) / "config.yaml"
    if not path.exists():
        return {}
    info = load_yaml(path).get("run") or {}
    return info if isinstance(info, dict) else {}


def run_kind(key_dir: str | Path) -> str:
    return str(run_info(key_dir).get("kind", "train"))


def made_by(key_dir: str | Path, name: str) -> tuple[str, str]:
    """(step, note) that makes file `name` of the run whose key dir is `key_dir`."""
    table = MADE_BY.get(run_kind(key_dir), MADE_BY["train"])
    return table.get(name, table.get("*", ("train", "")))


def require_files(directory: str | Path, names: list[str], key_dir: str | Path | None = None) -> None:
    """Raise RunError naming every missing file of `directory` and the kind of step that makes each."""
    directory = Path(directory)
    missing = [n for n in names if not (directory / n).exists()]
    if missing:
        owner = key_dir if key_dir is not None else directory
        steps = [made_by(owner, n) for n in missing]
        parts = ", ".join(f"{n} (made by the {STEPS[step]} step{f', {note}' if note else ''})"
                          for n, (step, note) in zip(missing, steps, strict=True))
        raise RunError(f"{directory} is missing {parts}", [step for step, _ in steps])


def key_values(key_dir: str | Path, n: int | None = None) -> list[str]:
    """Value names of a key, from the run's own records, else the official table, else v0..v{n-1}."""
    key_dir = Path(key_dir)
    values = run_info(key_dir).get("values")
    if values:
        return list(values)
    for fdir in fold_dirs(key_dir).values():
        pre = fdir / "preprocess.json"
        if pre.exists():
            vals = read_json(pre).get("values")
            if vals:
                return list(vals)
    if key_dir.name in OFFICIAL_KEYS:
        return list(OFFICIAL_KEYS[key_dir.name])
    if n is None:
        raise RunError(f"{key_dir}: cannot tell the value names (no preprocess.json, no run.values)")
    return [f"v{i}" for i in range(n)]


def read_prob_table(path: str | Path, need: tuple[str, ...] = ("image", "key")) -> pd.DataFrame:
    """Read and check an oof/test probability table: id columns, p_0..p_{n-1}, finite rows summing to 1."""
    path = Path(path)
    df = read_csv_checked(path, {"image": str, "key": str, "label": str}, what="probability table")
    missing = [c for c in need if c not in df.columns]
    pcols = [c for c in df.columns if c.startswith(PREFIX)]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; expected {list(need)} + p_0..p_(n-1)")
    if not pcols or pcols != prob_columns(len(pcols)):
        raise DataError(path, f"probability columns must be p_0..p_(n-1) in order, got {pcols}")
    if "fold" in df.columns:
        if df["fold"].isna().any():
            raise DataError(path, "empty fold value", int(np.flatnonzero(df["fold"].isna())[0]) + 2)
        df["fold"] = df["fold"].astype(int)
    probs = df[pcols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(probs).all(axis=1)
    if bad.any():
        raise DataError(path, "non-numeric or empty probability", int(np.flatnonzero(bad)[0]) + 2)
    off = np.abs(probs.sum(axis=1) - 1.0) > SUM_TOLERANCE
    if off.any() or (probs < 0).any():
        row = int(np.flatnonzero(off | (probs < 0).any(axis=1))[0])
        raise DataError(path, f"probabilities must be >= 0 and sum to 1 (sum {probs[row].sum():.4f})", row + 2)
    dup = df["image"].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise DataError(path, f"duplicate row for image {df['image'].iloc[row]}", row + 2)
    df[pcols] = probs
    return df


def load_oof(key_dir: str | Path, tta: bool = False) -> pd.DataFrame:
    """The merged out-of-fold table (image, key, fold, label, p_*) of a key."""
    name = "oof_tta.csv" if tta else "oof.csv"
    require_files(key_dir, [name], key_dir)
    return read_prob_table(Path(key_dir) / name, need=("image", "key", "fold", "label"))


def load_test(key_dir: str | Path) -> pd.DataFrame:
    require_files(key_dir, ["test.csv"], key_dir)
    return read_prob_table(Path(key_dir) / "test.csv")


def key_folds(key_dir: str | Path) -> pd.DataFrame:
    """image -> fold of a run's key: its folds.csv when the run kept one, else the oof's fold column."""
    key_dir = Path(key_dir)
    path = key_dir / "folds.csv"
    if path.exists():
        df = read_fold_file(path, need=("image", "fold"))
        if "key" in df.columns and key_dir.name in set(df["key"]):
            df = df[df["key"] == key_dir.name]
        return df[["image", "fold"]].reset_index(drop=True)
    return load_oof(key_dir)[["image", "fold"]]


def check_same_rows(tables: dict[str, pd.DataFrame], what: str, folds: bool = True) -> None:
    """Refuse tables (one per run) that differ in rows, value counts, labels or fold assignment."""
    names = list(tables)
    ref_name, ref = names[0], tables[names[0]]
    ref_n = len([c for c in ref.columns if c.startswith(PREFIX)])
    ref_images = set(ref["image"])
    for name in names[1:]:
        df = tables[name]
        n = len([c for c in df.columns if c.startswith(PREFIX)])
        if n != ref_n:
            raise RunError(f"{what}: {name} has {n} values per row but {ref_name} has {ref_n}; "
                           "runs of different value sets cannot be combined")
        images = set(df["image"])
        if images != ref_images:
            only_a, only_b = sorted(ref_images - images), sorted(images - ref_images)
            raise RunError(f"{what}: {name} and {ref_name} cover different images "
                           f"({len(only_b)} only in {name}, e.g. {only_b[:2]}; "
                           f"{len(only_a)} only in {ref_name}, e.g. {only_a[:2]})")
        merged = ref.merge(df, on="image", suffixes=("_a", "_b"))
        for col, label in (("label", "labels"), ("fold", "fold assignments")):
            if col == "fold" and not folds:
                continue
            if col in ref.columns and col in df.columns:
                diff = merged[merged[f"{col}_a"] != merged[f"{col}_b"]]
                if len(diff):
                    hint = " (trained on different fold files?)" if col == "fold" else ""
                    raise RunError(f"{what}: {name} and {ref_name} disagree on {label} for "
                                   f"{len(diff)} image(s), e.g. {diff['image'].iloc[0]}{hint}")


def check_same_folds(a: pd.DataFrame, b: pd.DataFrame, what: str, names: tuple[str, str] = ("a", "b")) -> None:
    """Refuse two image -> fold tables that cover different images or assign them different folds."""
    check_same_rows({names[0]: a[["image", "fold"]], names[1]: b[["image", "fold"]]}, what)


def align_to(df: pd.DataFrame, order: pd.Series) -> pd.DataFrame:
    """Rows of `df` in the image order `order` (same image set assumed, checked by check_same_rows)."""
    return df.set_index("image").loc[list(order)].reset_index()


def score_table(df: pd.DataFrame, n: int | None = None) -> dict[str, float]:
    """Official metrics of one key's table with a label column: mAP (= AP), BasicPrecision, acc, log loss."""
    from fashiontag.fashionai.metric import key_metrics

    return dict(key_metrics(probs_of(df, n), list(df["label"])))


def cv_summary(df: pd.DataFrame, key: str) -> dict[str, Any]:
    """cv.json content: overall metrics plus one entry per fold."""
    out: dict[str, Any] = {"key": key, "n": int(len(df)), **score_table(df)}
    if "fold" in df.columns:
        out["folds"] = [
            {"fold": int(k), "n": int(len(part)), **score_table(part)}
            for k, part in df.groupby("fold", sort=True)
        ]
    return out


def write_oof_and_cv(key_dir: str | Path, oof: pd.DataFrame, tta: bool = False) -> dict[str, Any]:
    """Write oof(.tta).csv and cv(_tta).json for a key directory; returns the cv dict."""
    key_dir = Path(key_dir)
    suffix = "_tta" if tta else ""
    atomic_write_csv(key_dir / f"oof{suffix}.csv", oof)
    cv = cv_summary(oof, key_dir.name)
    atomic_write_json(key_dir / f"cv{suffix}.json", cv)
    return cv


def write_done(key_dir: str | Path, kind: str, **record: Any) -> Path:
    """done.json of a derived run's key (stack, blend), written last: what it is, when it finished, and the
    code that made it (core/identity.py), as a training fold's done.json records too."""
    done = {"kind": kind, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), **record,
            "code": code_identity()}
    return atomic_write_json(Path(key_dir) / "done.json", done)


def write_derived_config(key_dir: str | Path, cfg: dict, kind: str, inputs: list[str],
                         values: list[str], **extra: Any) -> Path:
    """config.yaml of a derived run: the resolved config plus `run: {kind, inputs, values, ...}`."""
    out = dict(cfg)
    out["run"] = {"kind": kind, "inputs": [str(i) for i in inputs], "values": list(values), **extra}
    return save_config(out, Path(key_dir) / "config.yaml")


def run_config(key_dir: Path, cfg: dict | None, overrides: list[str] | None) -> dict:
    """The config a stage uses for a key: `cfg` when given, else the run's own config.yaml + overrides."""
    if cfg is not None:
        return apply_overrides(cfg, overrides)
    require_files(key_dir, ["config.yaml"], key_dir)
    path = key_dir / "config.yaml"
    return apply_overrides(with_base_defaults(load_yaml(path), path), overrides)
