"""Client event payloads: what each event takes, checked before anything runs
(pure).

Every client event carries exactly one JSON object. ``validate(event, args)``
returns it, or raises ``PayloadError(code, message)`` with ``code``:

* ``payload_too_large``: the payload is more than ``MAX_PAYLOAD_BYTES`` of JSON;
* ``invalid_payload``: not exactly one object, a field of the wrong type or
  out of range, a required field missing, or a field the event does not take;
* ``unknown_event``: no such client event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "AGENT_STATES",
    "CLIENT_EVENTS",
    "MAX_PAYLOAD_BYTES",
    "PayloadError",
    "validate",
]

MAX_PAYLOAD_BYTES: Final = 4096
AGENT_STATES: Final = ("available", "break", "offline")
_MAX_ID: Final = 64
_MAX_ROOMS: Final = 256


class PayloadError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Check = Callable[[str, Any], None]


def _fail(message: str) -> PayloadError:
    return PayloadError("invalid_payload", message)


def text(*, max_len: int, min_len: int = 0, choices: tuple[str, ...] = ()) -> Check:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise _fail(f"{name}: expected a string")
        if choices and value not in choices:
            raise _fail(f"{name}: expected one of {', '.join(choices)}")
        if len(value) > max_len:
            raise _fail(f"{name}: at most {max_len} characters")
        if len(value.strip()) < min_len:
            raise _fail(f"{name}: at least {min_len} characters")

    return check


def integer(*, minimum: int, maximum: int) -> Check:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(f"{name}: expected an integer")
        if not minimum <= value <= maximum:
            raise _fail(f"{name}: expected {minimum}-{maximum}")

    return check


def room_seqs(name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise _fail(f"{name}: expected an object of room -> last sequence number")
    if len(value) > _MAX_ROOMS:
        raise _fail(f"{name}: at most {_MAX_ROOMS} rooms")
    for room, seq in value.items():
        if not isinstance(room, str) or not room or len(room) > 100:
            raise _fail(f"{name}: room names are strings of 1-100 characters")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise _fail(f"{name}.{room}: expected a sequence number (an integer >= 0)")


@dataclass(frozen=True)
class Field:
    check: Check
    required: bool = False


_ID = text(max_len=_MAX_ID, min_len=1)

CLIENT_EVENTS: Final[Mapping[str, Mapping[str, Field]]] = {
    "set_state": {
        "state": Field(text(max_len=16, choices=AGENT_STATES), required=True),
        "reason": Field(text(max_len=64, min_len=1)),
        "agent_id": Field(_ID),
    },
    "end_wrap_up": {"agent_id": Field(_ID)},
    "accept": {"reservation_id": Field(_ID, required=True)},
    "reject": {"reservation_id": Field(_ID, required=True)},
    "resync": {
        "rooms": Field(room_seqs, required=True),
        "epoch": Field(text(max_len=64)),
    },
    "search_customers": {
        "text": Field(text(max_len=100, min_len=1), required=True),
        "limit": Field(integer(minimum=1, maximum=50)),
    },
}


def payload_size(args: tuple[Any, ...]) -> int:
    """Bytes of JSON; raises PayloadError if the payload is not JSON at all
    (binary attachments)."""
    try:
        return len(json.dumps(args, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError):
        raise _fail("payload: expected JSON (no binary data)") from None


def validate(event: str, args: tuple[Any, ...]) -> dict[str, Any]:
    fields = CLIENT_EVENTS.get(event)
    if fields is None:
        raise PayloadError("unknown_event", f"no client event {event[:64]!r}")
    size = payload_size(args)
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadError(
            "payload_too_large", f"payload of {size} bytes; at most {MAX_PAYLOAD_BYTES}"
        )
    if len(args) != 1 or not isinstance(args[0], dict):
        raise _fail("payload: expected exactly one JSON object")
    payload: dict[str, Any] = args[0]
    unknown = sorted(str(k)[:64] for k in payload if k not in fields)
    if unknown:
        raise _fail(f"unknown field(s): {', '.join(unknown)}")
    for name, field in fields.items():
        if name not in payload or payload[name] is None:
            if field.required:
                raise _fail(f"{name}: required")
            payload.pop(name, None)
            continue
        field.check(name, payload[name])
    return payload
