"""Configs are data: configs/base.yaml holds every default, experiment files override it, `--set k=v` last.

Loading is base.yaml <- experiment chain (`inherits:`) <- --set overrides -> validate -> a plain nested
dict, restricted to the sections of the command's family (core/schema.py: classification, fmnist,
detection). Code reads it one way, `cfg["section"]["field"]`, and never supplies a default of its own:
base.yaml is the one place a default lives, and the schema (which declares none) refuses a config that
lacks a setting. The resolved dict is saved into every run so the run can be reproduced.

Why pydantic (v2) for the schema rather than OmegaConf structured configs: it validates values, not only
types (enums as Literal, ranges such as probabilities in 0..1 and batch_size >= 1, the element type of
every list, `auto`-or-number settings), and its errors carry the setting's path and the broken rule, which
core/schema_errors.py turns into one line: `config: train.batch_size=0: must be >= 1 (from --set ...)`.
"""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fashiontag.core import schema
from fashiontag.core.errors import ConfigError
from fashiontag.core.files import atomic_write_text
from fashiontag.core.schema_errors import explain

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
BASE_NAME = "base.yaml"
# Top-level entries that are records, not settings: where the config came from, a derived run's inputs.
META_KEYS = ("config_source", "run")
# Sections renamed since older runs were saved: old name -> current name.
RENAMED_SECTIONS = {"split": "worn"}


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


def yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def find_config_dir() -> Path:
    """configs/ of the checkout; the package is installed editable, so it sits two levels above."""
    if CONFIG_DIR.is_dir():
        return CONFIG_DIR
    cwd_dir = Path.cwd() / "configs"
    if cwd_dir.is_dir():
        return cwd_dir
    raise ConfigError(f"cannot find the configs/ folder (looked in {CONFIG_DIR} and {cwd_dir})")


def _shown(path: Path) -> str:
    """A file as messages name it: relative to the working directory when it is below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def deep_merge(base: dict, override: dict) -> dict:
    """`override` merged into a copy of `base` (sections merged key by key; unknown keys are kept for the
    schema to name)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _Origins:
    """Where each setting's value came from (base.yaml, an experiment file, --set), for error messages."""

    def __init__(self, default: str):
        self.default, self.by_path = default, {}

    def record(self, tree: Any, source: str, prefix: str = "") -> None:
        for key, value in (tree or {}).items():
            path = f"{prefix}{key}"
            self.by_path[path] = source
            if isinstance(value, dict):
                self.record(value, source, path + ".")

    def __call__(self, dotted: str) -> str:
        inside = [src for path, src in self.by_path.items() if path.startswith(dotted + ".")]
        if dotted not in self.by_path and inside:
            return inside[-1]  # a section made by its settings (e.g. a misspelt section in --set)
        parts = dotted.split(".")
        while parts:
            if ".".join(parts) in self.by_path:
                return self.by_path[".".join(parts)]
            parts.pop()
        return self.default


def parse_value(text: str) -> Any:
    """`--set` values are YAML scalars or lists: 3, 1e-3, true, null, [224, 299], auto."""
    try:
        return yaml_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: cannot parse the value of --set {text!r}: {exc}") from exc


def family_of(cfg: dict) -> str:
    """The family a resolved config belongs to, from its sections."""
    return "detection" if "detect" in cfg else "fmnist" if "fmnist" in cfg else "classification"


def _set(cfg: dict, item: str, family: str, origins: _Origins) -> None:
    if "=" not in item:
        raise ConfigError(f"config: --set {item!r} must look like section.key=value")
    dotted, raw = (s.strip() for s in item.split("=", 1))
    parts = dotted.split(".")
    owner = schema.family_of_section(parts[0])
    if parts[0] not in cfg and owner not in (None, family) and parts[0] not in schema.sections(family):
        raise ConfigError(f"config: {dotted}: {parts[0]} is a section of {owner} commands "
                          f"({schema.FAMILY_COMMANDS[owner]}), not of this one (from --set {item})")
    node = cfg
    for i, part in enumerate(parts[:-1]):
        if part not in node:
            node[part] = {}  # an unknown section: the schema names it, with the closest known one
        elif not isinstance(node[part], dict):
            raise ConfigError(f"config: {'.'.join(parts[: i + 1])} is a setting, not a section "
                              f"(from --set {item})")
        node = node[part]
    node[parts[-1]] = parse_value(raw)
    origins.by_path[dotted] = f"--set {item}"


def _validate(cfg: dict, family: str, origins: _Origins) -> dict:
    """Validate `cfg` against its family; the plain dict back, record entries (META_KEYS) kept last."""
    settings = {k: v for k, v in cfg.items() if k not in META_KEYS}
    try:
        out = schema.validate(settings, family)
    except ValidationError as exc:
        raise ConfigError(explain(exc, settings, family, origins)) from None
    out.update({k: cfg[k] for k in META_KEYS if k in cfg})
    return out


def apply_overrides(cfg: dict, overrides: list[str] | None, family: str | None = None) -> dict:
    """`--set section.key=value` items applied to a resolved config, then validated (family: from cfg)."""
    family = family or family_of(cfg)
    out = copy.deepcopy(cfg)
    origins = _Origins("the resolved config")
    for item in overrides or []:
        _set(out, item, family, origins)
    return _validate(out, family, origins)


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


def base_config(family: str = "classification") -> dict:
    """base.yaml's sections of `family` (unvalidated: load_config validates the merged result)."""
    base = load_yaml(find_config_dir() / BASE_NAME)
    return {k: base[k] for k in schema.sections(family) if k in base}


def _own_sections(layer: dict, family: str, where: str) -> dict:
    """An experiment file's or saved run's sections that `family` uses: renamed sections under their
    current name; sections of other families dropped (an fmnist file also serves `fashiontag train`)."""
    out = {}
    for key, value in layer.items():
        if key in RENAMED_SECTIONS and RENAMED_SECTIONS[key] not in layer:
            key = RENAMED_SECTIONS[key]
        owner = schema.family_of_section(key)
        if key in schema.sections(family) or key in META_KEYS or owner is None:
            out[key] = value  # owner None: unknown, for the schema to name
        else:
            log.debug("%s: section %s is for %s commands; not used here", where, key, owner)
    return out


def load_config(experiment: str | Path | None = None, overrides: list[str] | None = None,
                family: str = "classification") -> dict:
    """base.yaml <- experiment file (which may name `inherits: other.yaml`) <- overrides, validated.

    The result holds only `family`'s sections (core/schema.py), plus `config_source`.
    """
    base_path = find_config_dir() / BASE_NAME
    cfg = base_config(family)
    origins = _Origins(_shown(base_path))
    origins.record(cfg, _shown(base_path))
    chain: list[tuple[Path, dict]] = []
    current = resolve_config_path(experiment) if experiment else None
    seen: set[Path] = set()
    while current is not None:
        if current in seen:
            raise ConfigError(f"config inheritance loop at {current}")
        seen.add(current)
        data = load_yaml(current)
        parent = data.pop("inherits", None)
        chain.append((current, data))
        current = resolve_config_path(parent) if parent and Path(parent).stem != "base" else None
    for path, layer in reversed(chain):
        own = _own_sections(layer, family, str(path))
        cfg = deep_merge(cfg, own)
        origins.record(own, _shown(path))
    for item in overrides or []:
        _set(cfg, item, family, origins)
    cfg = _validate(cfg, family, origins)
    cfg["config_source"] = str(experiment) if experiment else BASE_NAME
    return cfg


def _prune(cfg: dict, base: dict, where: str, prefix: str = "") -> dict:
    """Drop settings of a saved config that base.yaml no longer has (a run outlives removed settings)."""
    out = {}
    for key, value in cfg.items():
        if prefix == "" and key in META_KEYS:
            out[key] = value
        elif key not in base:
            log.info("%s: %s%s is no longer a setting; ignored", where, prefix, key)
        elif isinstance(value, dict) and isinstance(base[key], dict):
            out[key] = _prune(value, base[key], where, f"{prefix}{key}.")
        else:
            out[key] = value
    return out


def with_base_defaults(cfg: dict, source: str | Path = "a saved run config",
                       family: str = "classification") -> dict:
    """A saved (run) config over the current base.yaml, validated: settings added to the base since the run
    was made take their defaults (chosen to keep earlier behaviour), so old runs still predict, stack and
    resume, and `--set` reaches the new settings too. Older layouts are read as well: a `split:` section is
    the `worn:` section; `detect:` and `fmnist:` sections (saved before runs kept only their own) are dropped.
    """
    where = _shown(Path(source)) if isinstance(source, Path) else str(source)
    base = base_config(family)
    own = _prune(_own_sections(cfg, family, where), base, where)
    origins = _Origins(_shown(find_config_dir() / BASE_NAME))
    origins.record(own, where)
    return _validate(deep_merge(base, own), family, origins)


def save_config(cfg: dict, path: str | Path) -> Path:
    """Write a resolved config (a run's record). Runs made by `fashiontag fmnist` are classification runs:
    their config.yaml keeps the classification sections, without the command's own `fmnist` section."""
    own = {k: v for k, v in cfg.items() if k != "fmnist"}
    return atomic_write_text(path, yaml.safe_dump(own, sort_keys=False))
