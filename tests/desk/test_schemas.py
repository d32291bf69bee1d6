"""Client event payloads: types, sizes, unknown fields."""

from __future__ import annotations

import pytest

from agent_desk.schemas import MAX_PAYLOAD_BYTES, PayloadError, validate


def error(event: str, *args: object) -> str:
    with pytest.raises(PayloadError) as info:
        validate(event, args)
    return info.value.code


def test_a_valid_payload_is_returned() -> None:
    assert validate("set_state", ({"state": "break", "reason": "lunch"},)) == {
        "state": "break",
        "reason": "lunch",
    }
    assert validate("resync", ({"rooms": {"agent:1": 3}, "epoch": "ab"},))["rooms"] == {
        "agent:1": 3
    }


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("set_state", {"state": 1}),
        ("set_state", {"state": "asleep"}),
        ("set_state", {"state": "break", "reason": ["x"]}),
        ("set_state", {}),
        ("accept", {"reservation_id": 12}),
        ("accept", {"reservation_id": ""}),
        ("accept", {"reservation_id": "r-1", "force": True}),
        ("resync", {"rooms": {"agent:1": -1}}),
        ("resync", {"rooms": {"agent:1": True}}),
        ("resync", {"rooms": ["agent:1"]}),
        ("search_customers", {"text": "   "}),
        ("search_customers", {"text": "ada", "limit": 1000}),
    ],
)
def test_wrong_types_missing_or_unknown_fields_are_invalid(event: str, payload: object) -> None:
    assert error(event, payload) == "invalid_payload"


def test_not_exactly_one_object_is_invalid() -> None:
    assert error("accept") == "invalid_payload"
    assert error("accept", "r-1") == "invalid_payload"
    assert error("accept", {"reservation_id": "r-1"}, {"again": 1}) == "invalid_payload"
    assert error("accept", b"binary") == "invalid_payload"


def test_an_oversized_payload_is_refused_before_it_is_read() -> None:
    big = {"text": "x" * MAX_PAYLOAD_BYTES}
    assert error("search_customers", big) == "payload_too_large"


def test_an_unknown_event_is_refused() -> None:
    assert error("drop_tables", {}) == "unknown_event"
