"""The cross-validation report: every run and blend side by side, recomputed from their OOF files.

Scores come from each run's oof.csv (and oof_tta.csv when present) with the official metric, not from
cv.json, so every row of a table is computed the same way. The report is a run too: beside the
markdown it writes `<out stem>.json` with its inputs (files and md5) and every score, and PNG
confusion matrices under `<out dir>/confusion/<run>/<key>.png`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fashiontag.core.errors import FashiontagError
from fashiontag.core.files import atomic_write_json, atomic_write_text, file_md5
from fashiontag.fashionai.probs import probs_of
from fashiontag.fashionai.runs import key_values, list_keys, load_oof, run_info, run_kind
from fashiontag.fashionai.runs import score_table as _score
from fashiontag.report.plots import confusion, most_confused, save_confusion_png

log = logging.getLogger(__name__)

MARK = "<!-- fashiontag cv report -->"
METRICS = [("mAP", "mAP"), ("basic_precision", "BasicPrecision"), ("accuracy", "accuracy"),
           ("log_loss", "log loss")]


def discover_runs(runs_dir: str | Path) -> list[Path]:
    """Runs under `runs_dir` with at least one key holding an oof.csv (other folders are ignored)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FashiontagError(f"no runs folder {runs_dir}: train something first (`fashiontag train`)")
    found = []
    for p in sorted(runs_dir.iterdir()):
        if p.is_dir() and any((p / k / "oof.csv").exists() for k in list_keys(p)):
            found.append(p)
    return found


def collect_scores(run_dirs: list[Path]) -> tuple[pd.DataFrame, list[dict]]:
    """One row per run, key and variant (plain / tta) with the metrics; plus the input records."""
    rows, inputs = [], []
    for run in run_dirs:
        keys = [k for k in list_keys(run) if (run / k / "oof.csv").exists()]
        if not keys:
            raise FashiontagError(f"{run}: no key with an oof.csv (made by `fashiontag train`)")
        for key in keys:
            kdir = run / key
            for variant, tta in (("plain", False), ("tta", True)):
                if tta and not (kdir / "oof_tta.csv").exists():
                    continue
                oof = load_oof(kdir, tta=tta)
                path = kdir / ("oof_tta.csv" if tta else "oof.csv")
                inputs.append({"run": run.name, "key": key, "file": str(path), "md5": file_md5(path)})
                rows.append({"run": run.name, "key": key, "variant": variant, "kind": run_kind(kdir),
                             **_score(oof), "_dir": str(kdir), "_tta": tta})
    return pd.DataFrame(rows), inputs


def _fmt(v: object) -> str:
    if isinstance(v, float | np.floating):
        return "nan" if np.isnan(v) else f"{v:.4f}"
    return str(v)


def md_table(df: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (no extra dependency)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def _label(row: pd.Series) -> str:
    return f"{row['run']} +TTA" if row["variant"] == "tta" else str(row["run"])


def overall_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean over each run's keys (the competition's totals are unweighted means over keys)."""
    out = []
    for _, part in scores.groupby(["run", "variant"], sort=False):
        out.append({"run": _label(part.iloc[0]), "kind": part["kind"].iloc[0], "keys": len(part),
                    **{name: part[col].mean() for col, name in METRICS}})
    return pd.DataFrame(out)


def key_table(scores: pd.DataFrame, key: str) -> pd.DataFrame:
    part = scores[scores["key"] == key]
    return pd.DataFrame([{"run": _label(r), "n": int(r["n"]), **{name: r[col] for col, name in METRICS}}
                         for _, r in part.iterrows()])


def tta_table(scores: pd.DataFrame) -> pd.DataFrame:
    """cv vs cv_tta of every run/key that has both."""
    plain = scores[scores["variant"] == "plain"].set_index(["run", "key"])
    tta = scores[scores["variant"] == "tta"].set_index(["run", "key"])
    both = plain.join(tta, lsuffix="", rsuffix="_tta", how="inner")
    return pd.DataFrame([{"run": run, "key": key, "mAP": r["mAP"], "mAP +TTA": r["mAP_tta"],
                          "gain": r["mAP_tta"] - r["mAP"], "log loss": r["log_loss"],
                          "log loss +TTA": r["log_loss_tta"]} for (run, key), r in both.iterrows()])


def xgb_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Each stack (XGBoost head) key against the CNN run it was built from (its OOF source)."""
    out = []
    for _, r in scores[(scores["kind"] == "stack") & (scores["variant"] == "plain")].iterrows():
        info = run_info(r["_dir"])
        src = Path(info.get("inputs", [""])[0])
        oof_name = info.get("oof_file", "oof.csv")
        if not (src / oof_name).exists():
            continue
        cnn = _score(load_oof(src, tta=oof_name == "oof_tta.csv"))
        out.append({"key": r["key"], "CNN run": f"{src.parent.name} ({oof_name})", "XGB run": r["run"],
                    "mAP CNN": cnn["mAP"], "mAP XGB": r["mAP"], "gain": r["mAP"] - cnn["mAP"],
                    "log loss CNN": cnn["log_loss"], "log loss XGB": r["log_loss"]})
    return pd.DataFrame(out)


def confusion_section(scores: pd.DataFrame, out_dir: Path, rel: Path) -> list[str]:
    """A PNG per run/key (plain OOF) and the most confused value pairs named."""
    lines = []
    for _, r in scores[scores["variant"] == "plain"].iterrows():
        oof = load_oof(r["_dir"])
        probs = probs_of(oof)
        n = probs.shape[1]
        values = key_values(r["_dir"], n)
        y = np.array([s.index("y") for s in oof["label"]])
        cm = confusion(y, probs.argmax(axis=1), n)
        name = Path("confusion") / r["run"] / f"{r['key']}.png"
        save_confusion_png(cm, values, f"{r['run']} / {r['key']}", out_dir / name)
        pairs = most_confused(cm, values)
        named = "; ".join(f"{a} -> {b} ({c})" for a, b, c in pairs) or "none"
        lines += [f"**{r['run']} / {r['key']}**: most confused (true -> predicted): {named}", "",
                  f"![{r['run']} {r['key']}]({(rel / name).as_posix()})", ""]
    return lines


def write_report(run_dirs: list[str | Path], out: str | Path = "reports/cv_report.md",
                 force: bool = False, plots: bool = True) -> Path:
    """Write the markdown report, its PNGs and its JSON record; returns the markdown path."""
    out = Path(out)
    if out.exists() and not force and not out.read_text(encoding="utf-8", errors="replace").startswith(MARK):
        raise FashiontagError(f"{out} exists and is not a fashiontag report; pass --force to replace it")
    run_dirs = [Path(r) for r in run_dirs]
    if not run_dirs:
        raise FashiontagError("no runs to report: train, stack or blend something first")
    scores, inputs = collect_scores(run_dirs)
    lines = [MARK, "# Cross-validation report", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} from {len(run_dirs)} run(s): "
             + ", ".join(r.name for r in run_dirs) + ". Scores are recomputed from each run's out-of-fold "
             "files with the official metric; `+TTA` rows use oof_tta.csv. Overall = unweighted mean "
             "over the run's keys (compare runs with the same `keys`).", "",
             "## Overall", "", md_table(overall_table(scores)), ""]
    for key in dict.fromkeys(scores["key"]):
        lines += [f"## {key}", "", md_table(key_table(scores, key)), ""]
    from fashiontag.report.groups import (
        group_section,  # runs scored on worn vs hanger images (report/groups.py)
    )

    lines += group_section(run_dirs)
    tta = tta_table(scores)
    lines += ["## TTA gain (cv vs cv_tta)", "",
              md_table(tta) if len(tta) else "No run has oof_tta.csv (`fashiontag predict` with tta.on_oof).", ""]
    xgb = xgb_table(scores)
    lines += ["## XGBoost head vs CNN head", "",
              md_table(xgb) if len(xgb) else "No stack run (`fashiontag stack`) in this report.", ""]
    if plots:
        lines += ["## Confusion matrices", "", *confusion_section(scores, out.parent, Path("."))]
    atomic_write_text(out, "\n".join(lines) + "\n")
    record = {"kind": "report", "out": str(out), "inputs": inputs,
              "scores": scores.drop(columns=["_dir", "_tta"]).to_dict(orient="records")}
    atomic_write_json(out.with_suffix(".json"), record)
    log.info("wrote %s (%d runs, %d keys)", out, len(run_dirs), scores["key"].nunique())
    return out
