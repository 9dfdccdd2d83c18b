"""The CV report's hanger-vs-worn section: every run scored on all, worn and hanger/flat images.

Any run whose training root has a split file is scored by group, whatever its worn.mode, from its own
oof.csv on its own folds: so `none`, `combined`, `separate` and `crop` runs line up row by row (same
images, same folds) and the report shows where each mode wins or loses.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from fashiontag.data.worn_file import read_split, split_path
from fashiontag.data.worn_modes import GROUPS, group_report, split_mode
from fashiontag.fashionai.runs import list_keys, load_oof, run_config, score_table

log = logging.getLogger(__name__)

METRICS = ("mAP", "basic_precision", "accuracy", "log_loss")


def group_scores(run_dirs: list[str | Path]) -> pd.DataFrame:
    """run, key, mode, group (all / worn / hanger), n and the official metrics, for runs with a split file."""
    rows = []
    for run in map(Path, run_dirs):
        for key in list_keys(run):
            kdir = run / key
            if not (kdir / "oof.csv").exists() or not (kdir / "config.yaml").exists():
                continue
            cfg = run_config(kdir, None, None)  # over base.yaml: older runs lack newer settings
            path = split_path(cfg["data"]["root"], cfg)
            if not path.exists():
                continue
            report = group_report(load_oof(kdir), read_split(path), score_table, path, on_missing="hanger")
            for group in ("all", *GROUPS):
                rows.append({"run": run.name, "key": key, "mode": split_mode(cfg), "group": group,
                             **{m: report[group].get(m) for m in ("n", *METRICS)}})
    return pd.DataFrame(rows, columns=["run", "key", "mode", "group", "n", *METRICS])


def group_section(run_dirs: list[str | Path]) -> list[str]:
    """Markdown lines for the report (nothing when no run has a split file)."""
    scores = group_scores(run_dirs)
    if scores.empty:
        return []
    lines = ["## Hanger vs worn (split groups)", "",
             "Each run scored on its own out-of-fold rows, split by the person detector "
             "(`fashiontag worn`); `mode` is the run's worn.mode.", ""]
    for key, part in scores.groupby("key", sort=False):
        table = part.pivot_table(index=["run", "mode"], columns="group", values="mAP", sort=False)
        counts = part.drop_duplicates("group").set_index("group")["n"]
        header = ["run", "mode"] + [f"mAP {g} (n={int(counts[g])})" for g in ("all", *GROUPS) if g in table]
        lines += [f"### {key}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for (run, mode), row in table.iterrows():
            cells = [f"{row[g]:.4f}" if pd.notna(row.get(g)) else "" for g in ("all", *GROUPS) if g in table]
            lines.append(f"| {run} | {mode} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines
