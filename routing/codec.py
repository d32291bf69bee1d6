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
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Union, get_args, get_origin

from routing import model

__all__ = ["EVENT_TYPES", "event_from_json", "event_to_json", "from_json", "to_json"]

EVENT_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in get_args(model.RoutingEvent)}


def to_json(value: Any) -> Any:
    """``value`` as JSON-ready data: a dataclass as a dict of its fields, an
    enum as its value, a mapping as a dict with string keys, a tuple or list
    as a list, a set as a sorted list, anything else as it is.

    Dispatched on the value's type, through an encoder made once per type
    (``_encoder``): the routing journal encodes every event, task and agent it
    stores this way, and asking ``is_dataclass``, ``fields`` and four
    ``isinstance`` of each value was most of that time (bench/RESULTS.md,
    "Sixth round")."""
    encode = _ENCODERS.get(type(value))
    if encode is None:
        encode = _encoder(type(value))
    return encode(value)


_ENCODERS: dict[type[Any], Callable[[Any], Any]] = {
    t: lambda value: value for t in (str, int, float, bool, type(None))
}


def _encoder(cls: type[Any]) -> Callable[[Any], Any]:
    """How ``to_json`` encodes a value of type ``cls`` (the same order of
    questions as asked of a value: dataclass, enum, mapping, sequence, set)."""
    encode: Callable[[Any], Any]
    if dataclasses.is_dataclass(cls):
        names = tuple(f.name for f in dataclasses.fields(cls))

        def encode(value: Any) -> Any:
            return {name: to_json(getattr(value, name)) for name in names}

    elif issubclass(cls, enum.Enum):

        def encode(value: Any) -> Any:
            return value.value

    elif issubclass(cls, Mapping):

        def encode(value: Any) -> Any:
            return {str(k): to_json(v) for k, v in value.items()}

    elif issubclass(cls, tuple | list):

        def encode(value: Any) -> Any:
            return [to_json(v) for v in value]

    elif issubclass(cls, frozenset | set):

        def encode(value: Any) -> Any:
            return sorted(to_json(v) for v in value)

    else:

        def encode(value: Any) -> Any:
            return value

    _ENCODERS[cls] = encode
    return encode


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
