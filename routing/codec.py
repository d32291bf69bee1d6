"""Routing values to and from JSON, for the journal (pure).

Every routing value is a frozen dataclass of strings, numbers, booleans,
enums, tuples, frozensets and mappings, so one generic converter driven by the
type hints serves them all; an event is stored as ``{"type": name, ...}``.
Hand-written because the values are our own frozen dataclasses and a schema
library would restate every field a second time.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, Union, get_args, get_origin

from routing import model

__all__ = ["EVENT_TYPES", "event_from_json", "event_to_json", "from_json", "to_json"]

EVENT_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in get_args(model.RoutingEvent)}


def to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(to_json(v) for v in value)
    return value


@cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(model))


def from_json(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return from_json(options[0], data)
        return data  # a union of plain values (str | int | float | bool)
    if origin is typing.Literal:
        return data
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        kwargs = {
            f.name: from_json(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if f.name in data
        }
        return tp(**kwargs)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json(args[0], v) for v in data)
        return tuple(from_json(a, v) for a, v in zip(args, data, strict=True))
    if origin in (frozenset, set):
        (arg,) = get_args(tp)
        return frozenset(from_json(arg, v) for v in data)
    if origin in (Mapping, dict) or origin is typing.Mapping:
        _, value_type = get_args(tp)
        return {k: from_json(value_type, v) for k, v in data.items()}
    if tp is float and isinstance(data, int):
        return float(data)
    return data


def event_to_json(event: model.RoutingEvent) -> dict[str, Any]:
    data = to_json(event)
    data["type"] = type(event).__name__
    return typing.cast(dict[str, Any], data)


def event_from_json(data: Mapping[str, Any]) -> model.RoutingEvent:
    cls = EVENT_TYPES[data["type"]]
    return typing.cast(model.RoutingEvent, from_json(cls, data))
