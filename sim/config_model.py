"""The schema vocabulary of every configuration file, and its errors in the project's terms.

Configuration files (scenario.toml and its tables, sensor profiles, study files, alarm rules) are
declared as pydantic models or pydantic dataclasses using :data:`CONFIG` and the strict scalar
types below: TOML gives exact types, so ``"10"`` is not a number and ``1`` is not ``true``;
integers are accepted where a number is expected, arrays where a tuple is. :func:`validate`
checks a parsed document and turns pydantic's first problem into the project's
:class:`~sim.errors.FileFieldError`: the file, the dotted field path (``devices.radar.count``,
``kpis[2]``), the value and what was expected. A check pydantic cannot express raises
:func:`invalid` from a validator to keep that contract.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Hashable
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from sim.errors import FileFieldError, ScenarioError

T = TypeVar("T")

CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)
"""Unknown fields are errors, numbers are finite; scalars are strict through the types below."""

Number = Annotated[float, Field(strict=True)]
"""A finite number (an integer is accepted and becomes a float)."""
Integer = Annotated[int, Field(strict=True)]
Flag = Annotated[bool, Field(strict=True)]
Text = Annotated[str, Field(strict=True)]


def within(low: float, high: float) -> Any:
    """``Annotated[float, within(0, 1)]``: a number in ``low..high`` (both included)."""
    return Field(strict=True, ge=low, le=high)


class ConfigModel(BaseModel):
    """A table of a configuration file (see the module docstring)."""

    model_config = CONFIG | ConfigDict(frozen=True)


def invalid(problem: str, expected: str) -> PydanticCustomError:
    """The error a validator raises for a check of its own: ``problem``, and what was expected."""
    return PydanticCustomError("ccsim", "{problem}; expected {expected}",
                               {"problem": problem, "expected": expected})  # fmt: skip


@cache
def _adapter(cls: Any) -> TypeAdapter[Any]:
    return TypeAdapter(cls)


def validate(
    cls: type[T],
    data: object,
    path: Path | str,
    *,
    error: type[FileFieldError] = ScenarioError,
    at: tuple[str | int, ...] = (),
) -> T:
    """``data`` (a parsed TOML document or table) as a ``cls``, or ``error`` naming the first
    problem; ``at`` is where ``data`` lies in the file (``("devices",)``)."""
    try:
        value: T = _adapter(typing.cast(Hashable, cls)).validate_python(data)
    except ValidationError as exc:
        raise config_error(exc, cls, path, error=error, at=at) from None
    return value


def config_error(
    exc: ValidationError,
    cls: Any,
    path: Path | str,
    *,
    error: type[FileFieldError] = ScenarioError,
    at: tuple[str | int, ...] = (),
) -> FileFieldError:
    """pydantic's first problem with a document of type ``cls``, as one line in the project's terms."""
    details = exc.errors(include_url=False)[0]
    loc = details["loc"]
    if details["type"] == "missing" and loc and isinstance(loc[-1], int):
        # A fixed-length list with too few values: the list is wrong, not a value in it.
        field, target = _locate(cls, loc[:-1], at)
        return error(path, "wrong length", field=field, value=details["input"],
                     expected=_kind_of(target.annotation, field))  # fmt: skip
    field, target = _locate(cls, loc, at)
    problem, expected, value = _explain(details, field, target)
    return error(path, problem, field=field or None, value=value, expected=expected)


class _Target:
    """What the schema says of the place an error points at."""

    def __init__(self, annotation: Any, constraints: list[Any], known: list[str]) -> None:
        self.annotation = annotation
        self.constraints = constraints
        self.known = known
        """The fields of the table holding the place (an unknown field's neighbours)."""


def _strip(annotation: Any, constraints: list[Any]) -> Any:
    """``annotation`` without Annotated and Optional (its constraints go to ``constraints``)."""
    while True:
        if typing.get_origin(annotation) is Annotated:
            annotation, *extras = typing.get_args(annotation)
            for extra in extras:
                constraints.extend(extra.metadata if isinstance(extra, FieldInfo) else [extra])
            continue
        args = typing.get_args(annotation)
        if _is_union(annotation) and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            if len(rest) == 1:
                annotation = rest[0]
                continue
        return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _fields(annotation: Any) -> dict[str, FieldInfo] | None:
    fields = getattr(annotation, "__pydantic_fields__", None)
    return fields if isinstance(fields, dict) else None


def _locate(cls: Any, loc: tuple[str | int, ...], at: tuple[str | int, ...]) -> tuple[str, _Target]:
    """The dotted field path of ``loc`` (after ``at``), and the schema there. Parts that are not
    in the document (the member of a union pydantic tried) are left out."""
    parts: list[str | int] = list(at)
    constraints: list[Any] = []
    known: list[str] = []
    annotation = _strip(cls, constraints)
    for part in loc:
        fields = _fields(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(part, int):
            parts.append(part)
            args = typing.get_args(annotation)
            inner = args[min(part, len(args) - 1)] if origin is tuple and ... not in args else None
            constraints = []
            annotation = _strip(inner or (args[0] if args else Any), constraints)
        elif fields is not None:
            parts.append(part)
            constraints, known = [], sorted(fields)
            if part in fields:
                constraints.extend(fields[part].metadata)
                annotation = _strip(fields[part].annotation, constraints)
            else:
                annotation = Any
        elif origin is dict:
            parts.append(part)
            constraints = []
            annotation = _strip(typing.get_args(annotation)[1], constraints)
        # else: a union member's tag, not a place in the file
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    return dotted, _Target(annotation, constraints, known)


_TYPES = {
    "int_type": "an integer", "int_from_float": "an integer", "float_type": "a number",
    "bool_type": "true or false", "string_type": "a string",
}  # fmt: skip
_RANGES = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _explain(details: ErrorDetails, field: str, target: _Target) -> tuple[str, str | None, Any]:
    """(problem, expectation, value shown) of one pydantic error."""
    kind, message, ctx = details["type"], details["msg"], details.get("ctx") or {}
    value = details.get("input")
    if kind == "ccsim":
        return ctx["problem"], ctx["expected"], value
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return "unknown field", "one of " + ", ".join(target.known), None
    if kind in ("missing", "missing_argument", "missing_keyword_only_argument"):
        return "missing a value", _kind_of(target.annotation, field), None
    if kind in _TYPES:
        return "wrong type", _TYPES[kind], value
    if kind in ("dict_type", "model_type", "model_attributes_type", "dataclass_type"):
        return "not a table", f"[{field}]", value
    if kind in ("list_type", "tuple_type"):
        return "wrong type", _kind_of(target.annotation, field), value
    if kind == "finite_number":
        return "out of range", "a finite number", value
    if kind in _RANGES:
        return "out of range", _bounds(target.constraints, ctx), value
    if kind == "string_too_short":
        return "empty", "a non-empty string", value
    if kind in ("too_short", "too_long"):
        return "wrong length", _length(target, ctx), value
    if kind in ("literal_error", "enum"):
        return "unknown value", message.removeprefix("Input should be "), value
    if kind == "value_error":
        return "bad value", str(ctx.get("error", message)), value
    return "bad value", message.removeprefix("Input should be "), value


def _kind_of(annotation: Any, field: str) -> str:
    """What a value of ``annotation`` looks like in a TOML file."""
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(annotation) if a is not ...]
        element = _strip(args[0], []) if args else Any
        if _fields(element) is not None:
            return f"[[{field}]] tables"
        what = _kind_of(element, field).removeprefix("a ").removeprefix("an ")
        if origin is tuple and ... not in typing.get_args(annotation):
            return f"a list of {len(args)} {what}s"
        return f"a list of {what}s"
    if _fields(annotation) is not None or origin is dict:
        return f"[{field}]"
    names = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}
    return names.get(annotation, "a value")


def _bounds(constraints: list[Any], ctx: dict[str, Any]) -> str:
    """``low..high``, or the one-sided bounds, from the field's constraints."""
    bounds: dict[str, float] = {}
    for constraint in constraints:
        for name in ("gt", "ge", "lt", "le"):
            if isinstance(constraint, getattr(annotated_types, name.capitalize())):
                bounds[name] = getattr(constraint, name)
    if not bounds:
        bounds = {k: v for k, v in ctx.items() if k in ("gt", "ge", "lt", "le")}
    if set(bounds) == {"ge", "le"}:
        return f"{bounds['ge']:g}..{bounds['le']:g}"
    signs = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    return " and ".join(f"{signs[k]} {v:g}" for k, v in bounds.items())


def _length(target: _Target, ctx: dict[str, Any]) -> str:
    annotation = target.annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple and ... not in args:
        return _kind_of(annotation, "")
    if "min_length" in ctx:
        least = ctx["min_length"]
        return "a list with at least one entry" if least == 1 else f"a list of {least} or more"
    return f"a list of at most {ctx.get('max_length')}"
