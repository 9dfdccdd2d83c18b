"""Configs are data: base.yaml holds every default, experiment files override it, `--set k=v` last.

The resolved config is a plain nested dict; it is saved into every run so the run can be reproduced.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from fashiontag.core.errors import ConfigError
from fashiontag.core.files import atomic_write_text

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
BASE_NAME = "base.yaml"


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads `1e-3` as a float (YAML 1.1 needs a dot; configs are written by people)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def find_config_dir() -> Path:
    """configs/ of the checkout; the package is installed editable, so it sits two levels above."""
    if CONFIG_DIR.is_dir():
        return CONFIG_DIR
    cwd_dir = Path.cwd() / "configs"
    if cwd_dir.is_dir():
        return cwd_dir
    raise ConfigError(f"cannot find the configs/ folder (looked in {CONFIG_DIR} and {cwd_dir})")


def deep_merge(base: dict, override: dict, where: str = "", strict: bool = True) -> dict:
    """Merge `override` into a copy of `base`; with `strict`, unknown keys are an error (typos)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        path = f"{where}.{key}" if where else key
        if strict and key not in out:
            raise ConfigError(f"unknown config key {path!r} (not in {BASE_NAME})")
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value, path, strict)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_value(text: str) -> Any:
    """`--set` values are YAML scalars or lists: 3, 1e-3, true, null, [224, 299], auto."""
    try:
        return yaml_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse override value {text!r}: {exc}") from exc


def _coerce(old: Any, new: Any, path: str) -> Any:
    """Keep overrides type-safe: an int default takes an int, a float default a number, and so on."""
    if old is None or new is None:
        return new
    if isinstance(old, bool):
        if not isinstance(new, bool):
            raise ConfigError(f"{path} expects true/false, got {new!r}")
        return new
    if isinstance(old, float) and isinstance(new, int) and not isinstance(new, bool):
        return float(new)
    if isinstance(old, int) and isinstance(new, float) and new.is_integer():
        return int(new)
    if isinstance(old, (int, float)) and isinstance(new, str):
        # Some numeric defaults also accept a keyword (lr: auto); those are stored as str in base.yaml.
        raise ConfigError(f"{path} expects a number, got {new!r}")
    if isinstance(old, list) and not isinstance(new, list):
        return [new]
    if isinstance(old, dict) and not isinstance(new, dict):
        raise ConfigError(f"{path} is a section; set its fields as {path}.<name>=...")
    return new


def apply_overrides(cfg: dict, overrides: list[str] | None) -> dict:
    out = copy.deepcopy(cfg)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            if part not in node or not isinstance(node[part], dict):
                raise ConfigError(f"unknown config section {'.'.join(parts[: i + 1])!r} in override {item!r}")
            node = node[part]
        leaf = parts[-1]
        if leaf not in node:
            raise ConfigError(f"unknown config key {dotted!r} in override {item!r}")
        node[leaf] = _coerce(node[leaf], parse_value(raw), dotted)
    return out


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def resolve_config_path(name: str | Path) -> Path:
    """A path, or a bare name looked up in configs/ (`demo` -> configs/demo.yaml)."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (find_config_dir() / path, find_config_dir() / f"{path}.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"config not found: {name} (give a path or a name in {find_config_dir()})")


def load_config(experiment: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    """base.yaml <- experiment file (which may name `inherits: other.yaml`) <- overrides."""
    base = load_yaml(find_config_dir() / BASE_NAME)
    chain: list[dict] = []
    current = resolve_config_path(experiment) if experiment else None
    seen: set[Path] = set()
    while current is not None:
        if current in seen:
            raise ConfigError(f"config inheritance loop at {current}")
        seen.add(current)
        data = load_yaml(current)
        parent = data.pop("inherits", None)
        chain.append(data)
        current = resolve_config_path(parent) if parent and Path(parent).stem != "base" else None
    cfg = base
    for layer in reversed(chain):
        cfg = deep_merge(cfg, layer)
    cfg = apply_overrides(cfg, overrides)
    cfg["config_source"] = str(experiment) if experiment else BASE_NAME
    return cfg


def with_base_defaults(cfg: dict) -> dict:
    """A saved (run) config over the current base.yaml: settings added to the base since the run was made
    take their defaults (chosen to keep earlier behaviour), so old runs still predict, stack and resume,
    and `--set` reaches the new settings too."""
    return deep_merge(load_yaml(find_config_dir() / BASE_NAME), cfg, strict=False)


def save_config(cfg: dict, path: str | Path) -> Path:
    return atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False))


def get(cfg: dict, dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
