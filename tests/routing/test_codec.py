"""The journal's codec: every routing value encodes to the same JSON whatever
path it takes, and decodes back to an equal value."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from routing.codec import event_from_json, event_to_json, from_json, to_json
from routing.model import (
    AgentRecord,
    AgentState,
    RouterSnapshot,
    TaskRecord,
)
from tests.routing.helpers import BILLING_AND_GENERAL, Desk

QUEUES = BILLING_AND_GENERAL


def reflective(value: Any) -> Any:
    """What to_json must give, asked of each value in turn (no caching)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: reflective(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): reflective(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [reflective(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(reflective(v) for v in value)
    return value


def busy_desk() -> Desk:
    d = Desk(*QUEUES)
    d.agent("ann", skills={"billing": 6}, languages=frozenset({"fr", "en"}))
    d.agent("bob", skills={"billing": 6, "general": 2}, auto_accept=True, attributes={"vip": True})
    d.agent("cid", skills={"billing": 3}, available=False)
    d.submit("t1", "billing", priority=1, customer_id="c1", attributes={"caller": "+331"})
    d.submit("t2", "billing", required_skills={"billing": 5})
    d.clock.advance(40)
    d.submit("t3", "billing", language="fr")
    d.wait(100)
    d.do("set_agent_state", "cid", "break", reason="lunch")
    return d


def test_every_event_and_record_encodes_as_asked_of_each_value() -> None:
    d = busy_desk()
    snapshot = d.router.snapshot()
    values: list[Any] = [*d.log, snapshot, *snapshot.agents, *snapshot.tasks, AgentState.BREAK]
    assert len(d.log) > 10 and snapshot.agents and snapshot.tasks
    for value in values:
        assert to_json(value) == reflective(value), value
    # Mixed containers, and a class (not an instance) left as it is.
    mixed = {1: (frozenset({"b", "a"}), [AgentState.AVAILABLE]), "x": None, "c": TaskRecord}
    assert to_json(mixed) == {"1": [["a", "b"], ["available"]], "x": None, "c": TaskRecord}


def test_events_and_records_come_back_equal() -> None:
    d = busy_desk()
    for event in d.log:
        assert event_from_json(event_to_json(event)) == event
    snapshot = d.router.snapshot()
    assert from_json(RouterSnapshot, to_json(snapshot)) == snapshot
    for agent in snapshot.agents:
        assert from_json(AgentRecord, to_json(agent)) == agent
