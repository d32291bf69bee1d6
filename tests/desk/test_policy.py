"""The default desk policy (until the accounts policy is plugged in)."""

from __future__ import annotations

import pytest

from agent_desk.policy import desk_policy
from callwright.app import Principal

ALICE = Principal("1", "agent")
SUE = Principal("9", "supervisor")
ADMIN = Principal("api-token", "admin")
SERVICE = Principal("svc", "service")


@pytest.mark.parametrize(
    ("principal", "action", "subject", "allowed"),
    [
        (ALICE, "desk.connect", None, True),
        (SERVICE, "desk.connect", None, False),
        (ALICE, "agents.state", "1", True),
        (ALICE, "agents.state", "2", False),
        (SUE, "agents.state", "2", True),
        (ADMIN, "agents.state", "2", True),
        (ALICE, "reservations.accept", "1", True),
        (ALICE, "reservations.accept", "2", False),
        (ALICE, "reservations.reject", None, False),
        (SUE, "reservations.reject", "2", True),
        (ALICE, "customers.search", None, True),
        (ALICE, "calls.spy", None, False),
    ],
)
def test_desk_policy(principal: Principal, action: str, subject: str | None, allowed: bool) -> None:
    assert desk_policy(principal, action, subject) is allowed
