"""A pydantic ValidationError of the config schema -> one line naming the setting, its value, the rule and
where the value came from: `config: train.batch_size=0: must be >= 1 (from --set train.batch_size=0)`."""

import difflib
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from fashiontag.core.schema import FAMILIES, FAMILY_COMMANDS, family_of_section

SHOWN = 3  # problems spelled out; the rest are counted

_MESSAGES = {
    "missing": "missing (base.yaml gives every setting its value)",
    "model_type": "is a section: set its fields, e.g. {path}.<name>=...",
    "dict_type": "is a section: set its fields, e.g. {path}.<name>=...",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "string_too_short": "must not be empty",
    "list_type": "must be a list",
}


def show(value: Any) -> str:
    """A value as it would be typed in YAML or after --set."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{...}"
    return str(value)


def _lookup(cfg: Any, path: list[str]) -> tuple[bool, Any]:
    node = cfg
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _model_at(family: str, path: list[str]) -> type[BaseModel] | None:
    """The section model that holds the field at `path` (None below a plain value)."""
    model: Any = FAMILIES[family]
    for part in path[:-1]:
        field = model.model_fields.get(part)
        model = field.annotation if field is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
    return model


def _unknown(family: str, path: list[str], value: Any) -> str:
    if len(path) == 1 and family_of_section(path[0]) not in (None, family):
        owner = family_of_section(path[0])
        return f"a section of {owner} commands ({FAMILY_COMMANDS[owner]}), not of this one"
    what = "section" if isinstance(value, dict) else "setting"
    model = _model_at(family, path)
    names = list(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(path[-1], names, n=1)
    hint = f"; did you mean {'.'.join([*path[:-1], close[0]])}?" if close else f" (known: {', '.join(names)})"
    return f"unknown {what}{hint}"


def _one(err: dict, cfg: dict, family: str, origin_of: Callable[[str], str]) -> str:
    loc = list(err["loc"])
    field = [p for p in loc if isinstance(p, str)]
    items = [p for p in loc if isinstance(p, int)]
    dotted = ".".join(field)
    found, value = _lookup(cfg, field)
    kind = err["type"]
    if kind == "extra_forbidden":
        message = _unknown(family, field, value)
    elif kind == "literal_error":
        message = f"must be {err['ctx']['expected']}"
    elif kind in _MESSAGES:
        message = _MESSAGES[kind].format(path=dotted)
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
    if items:
        message = f"item {items[0]} {message}"
    where = f"{dotted}={show(value)}" if found and not isinstance(value, dict) else dotted
    return f"{where}: {message} (from {origin_of(dotted)})"


def explain(exc: ValidationError, cfg: dict, family: str, origin_of: Callable[[str], str]) -> str:
    """One line for the whole error: the first few problems, then how many more there are."""
    errors = exc.errors()
    parts = [_one(e, cfg, family, origin_of) for e in errors[:SHOWN]]
    more = f"; and {len(errors) - SHOWN} more" if len(errors) > SHOWN else ""
    return "config: " + "; ".join(parts) + more
