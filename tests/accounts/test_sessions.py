"""Session tokens: signed, expiring, carrying agent id, role and token version."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent_desk.auth import Sessions, TokenClaims, TokenRejected
from routing.persistence import Agent

KEY = "a-signing-key-for-tests-0123456789abcdef"


class FakeClock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def agent(role: str = "agent", version: int = 3) -> Agent:
    return Agent(
        id=7,
        username="alice",
        display_name="Alice",
        extension="1001",
        email=None,
        role=role,  # type: ignore[arg-type]
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        active=True,
        token_version=version,
    )


def rejected(sessions: Sessions, token: str) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        sessions.read(token)
    return info.value


def test_a_token_carries_the_agent_role_and_version_until_it_expires() -> None:
    clock = FakeClock()
    sessions = Sessions(KEY, max_age=3600, clock=clock)
    token, expires_at = sessions.issue(agent(role="supervisor"))

    assert expires_at == clock.now + 3600
    clock.now += 3600
    assert sessions.read(token) == TokenClaims(
        agent_id=7, role="supervisor", version=3, issued_at=clock.now - 3600
    )
    clock.now += 1
    expired = rejected(sessions, token)
    assert (expired.reason, expired.agent_id) == ("expired", "7")


def test_a_token_from_another_key_or_altered_or_garbage_is_invalid() -> None:
    sessions = Sessions(KEY, max_age=3600)
    token, _ = sessions.issue(agent())
    other = Sessions("another-signing-key-0123456789abcdef", max_age=3600)
    payload, _, rest = token.partition(".")

    for bad in (other.issue(agent())[0], payload[:-2] + "xx." + rest, "garbage", ""):
        refused = rejected(sessions, bad)
        assert (refused.reason, refused.agent_id) == ("invalid", None)


def test_a_token_from_the_future_is_refused() -> None:
    clock = FakeClock()
    token, _ = Sessions(KEY, max_age=3600, clock=lambda: clock.now + 600).issue(agent())

    assert rejected(Sessions(KEY, max_age=3600, clock=clock), token).reason == "expired"


def test_no_signing_key_no_sessions() -> None:
    with pytest.raises(ValueError, match="signing key"):
        Sessions("", max_age=60)
