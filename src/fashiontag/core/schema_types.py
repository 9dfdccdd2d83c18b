"""Value types of the config schema (core/schema.py): numbers with bounds, lists, devices, `auto`-or-value.

Each type raises one short message ("must be >= 1", "must be a number") that core/schema_errors.py turns
into the one-line ConfigError the CLI prints. Numbers keep the type they were written with (10 stays 10,
1e-3 stays a float), so a saved run config reads back, and hashes, exactly as it was written.
"""

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    ValidationError,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

Bool = StrictBool  # true/false only: 0/1 or "yes" for a flag is more likely a slip than a choice


class Section(BaseModel):
    """A config section: every field required (base.yaml holds the values), unknown keys refused."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


def _bounds(v: float, ge: float | None, gt: float | None, le: float | None, lt: float | None) -> None:
    for bound, ok, sign in ((ge, lambda b: v >= b, ">="), (gt, lambda b: v > b, ">"),
                            (le, lambda b: v <= b, "<="), (lt, lambda b: v < b, "<")):
        if bound is not None and not ok(bound):
            raise PydanticCustomError("range", "must be {sign} {bound}", {"sign": sign, "bound": bound})


def num(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
        lt: float | None = None) -> Any:
    """A finite number (int or float, kept as written) within the bounds."""

    def check(v: Any) -> float:
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                raise PydanticCustomError("number", "must be a number") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise PydanticCustomError("number", "must be a number")
        if not math.isfinite(v):
            raise PydanticCustomError("number", "must be a finite number")
        _bounds(v, ge, gt, le, lt)
        return v

    return Annotated[float, PlainValidator(check)]


def integer(*, ge: int | None = None, le: int | None = None) -> Any:
    """A whole number within the bounds (2.0 is read as 2; 2.5, true and "two" are refused)."""

    def check(v: Any) -> int:
        if isinstance(v, str) and re.fullmatch(r"[-+]?\d+", v.strip()):
            v = int(v)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise PydanticCustomError("integer", "must be a whole number")
        _bounds(v, ge, None, le, None)
        return v

    return Annotated[int, PlainValidator(check)]


def _as_list(v: Any) -> Any:
    """`--set train.stages=224` means [224]: a single value where a list is expected becomes a list of one."""
    return v if v is None or isinstance(v, (list, tuple, dict)) else [v]


def listof(item: Any, *, n: int | None = None, min_len: int = 0, ordered: bool = False) -> Any:
    """A list of `item`s: exactly `n` of them, or at least `min_len`; `ordered`: non-decreasing (ranges)."""

    def check(v: list) -> list:
        if n is not None and len(v) != n:
            raise PydanticCustomError("length", "must have exactly {n} values", {"n": n})
        if len(v) < min_len:
            raise PydanticCustomError("length", "must have at least {n} value(s)", {"n": min_len})
        if ordered and any(a > b for a, b in zip(v, v[1:], strict=False)):
            raise PydanticCustomError("order", "must be in increasing order ([low, high])")
        return list(v)

    return Annotated[list[item], BeforeValidator(_as_list), AfterValidator(check)]


def described(what: str) -> WrapValidator:
    """Replace the several messages of a union (a number, or `auto`) by one: `must be <what>`."""

    def wrap(v: Any, handler: Any) -> Any:
        try:
            return handler(v)
        except ValidationError:
            raise PydanticCustomError("invalid", "must be {what}", {"what": what}) from None

    return WrapValidator(wrap)


def _device(v: Any) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v):
        raise PydanticCustomError("device", "must be auto, cpu, cuda or cuda:N")
    return v


Text = Annotated[str, Field(min_length=1)]
Device = Annotated[str, PlainValidator(_device)]
Int0 = integer(ge=0)
Int1 = integer(ge=1)
Prob = num(ge=0, le=1)
Size = integer(ge=16)  # an image side in pixels (train.plan_phases refuses smaller stages too)
AutoOrInt32 = Annotated[Literal["auto"] | integer(ge=32), described("auto or a whole number >= 32")]
Lr = Annotated[Literal["auto"] | num(gt=0), described("auto or a number > 0 (e.g. 1e-3)")]
