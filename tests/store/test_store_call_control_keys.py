"""The idempotency keys of call control in the store (``cti.keys``), on SQLite
and PostgreSQL: one claim wins, the outcome is kept for repeats, a refused
action frees its key, and keys expire after their time-to-live."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from cti.keys import CallControlKeys, StoredKey
from tests.store.conftest import FakeClock


async def test_one_claim_wins_and_the_outcome_is_kept_for_repeats(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    keys = CallControlKeys(engine, clock=clock)
    # Two nodes (two repositories) claim the same key at once: one wins.
    other = CallControlKeys(engine, clock=clock)
    results = await asyncio.gather(keys.claim("k-1"), other.claim("k-1"))
    assert sorted(r is None for r in results) == [False, True]
    assert [r for r in results if r is not None] == [StoredKey("k-1", "in_flight", None)]

    outcome = {"type": "OriginateResult", "number": "5550100003", "repeated": False}
    await keys.finish("k-1", outcome)
    assert await other.claim("k-1") == StoredKey("k-1", "done", outcome)


async def test_a_refused_action_frees_its_key_and_a_lost_one_stays_unknown(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    keys = CallControlKeys(engine, clock=clock)
    assert await keys.claim("refused") is None
    await keys.release("refused")
    assert await keys.claim("refused") is None  # free again: claimed anew

    assert await keys.claim("lost") is None
    await keys.unknown("lost")
    await keys.release("lost")  # only an in-flight key is released
    assert await keys.claim("lost") == StoredKey("lost", "unknown", None)


async def test_keys_expire_after_their_time_to_live(engine: AsyncEngine, clock: FakeClock) -> None:
    keys = CallControlKeys(engine, clock=clock, ttl=3600)
    assert await keys.claim("old") is None
    await keys.finish("old", {"type": "TransferResult"})
    clock.advance(1800)
    assert await keys.claim("young") is None
    clock.advance(1801)  # "old" is 3601 s old, "young" 1801 s
    assert await keys.claim("old") is None  # expired: a new claim
    assert await keys.claim("young") == StoredKey("young", "in_flight", None)  # still there
