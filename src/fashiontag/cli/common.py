"""Argument helpers shared by command modules, so every command spells common options the same way."""

from __future__ import annotations

import argparse


def add_config_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """--config (default: base.yaml, or the command's own `default` experiment) and repeatable --set."""
    where = f"default: {default}" if default else "base.yaml if omitted"
    p.add_argument("--config", default=default, help=f"experiment YAML (path or name in configs/); {where}")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="typed config override, e.g. --set train.unfrozen_epochs=3 --set model.backbone=resnet18 (repeatable)",
    )


def add_skip_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--skip-bad", action="store_true",
        help="skip bad rows/images and write a report instead of stopping at the first one",
    )


# The command that runs each kind of step whose missing output a RunError names (fashionai.runs.STEPS).
STEP_COMMANDS = {"train": "fashiontag train", "predict": "fashiontag predict", "stack": "fashiontag stack",
                 "blend": "fashiontag ensemble"}


def step_hint(exc: BaseException) -> str:
    """'; run `fashiontag train`' for an error that names the steps whose output is missing, else ''."""
    commands = [STEP_COMMANDS[s] for s in getattr(exc, "steps", None) or [] if s in STEP_COMMANDS]
    return f"; run {' then '.join(f'`{c}`' for c in commands)}" if commands else ""


DISPLAY = {"key": "key", "n": "n", "mAP": "mAP", "basic_precision": "BasicPrecision",
           "accuracy": "accuracy", "log_loss": "log_loss"}


def format_scores(table) -> str:
    return table.rename(columns=DISPLAY).to_string(index=False, float_format=lambda v: f"{v:.4f}")


def select_keys(run, cat: str) -> list[str] | None:
    """--cat -> full keys of the run (None = all)."""
    from fashiontag.fashionai.keys import resolve_key
    from fashiontag.fashionai.runs import list_keys

    if cat == "all":
        return None
    known = {k: [] for k in list_keys(run)}
    return [resolve_key(c.strip(), known) for c in cat.split(",") if c.strip()]
