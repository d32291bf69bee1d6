"""callwright.memory: long-lived objects frozen out of the collector's walks,
and cyclic garbage among them still reclaimed by the periodic full collection.

These tests change the interpreter's collector: each one leaves it unfrozen."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from callwright.config import ConfigError, load_config, parse_config
from callwright.memory import MemoryPolicy

ROOT = Path(__file__).resolve().parents[2]


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()
    gc.collect()


def test_start_freezes_what_exists_and_ticks_freeze_what_came_since() -> None:
    policy = MemoryPolicy(freeze_every=60, full_every=3600)
    policy.start(now=0.0)
    after_start = gc.get_freeze_count()
    assert after_start > 0

    kept = [Node() for _ in range(500)]
    assert policy.tick(now=60.0) == "freeze"
    assert gc.get_freeze_count() >= after_start + 500
    assert kept


def test_cyclic_garbage_that_was_frozen_is_reclaimed_by_the_full_collection() -> None:
    policy = MemoryPolicy(freeze_every=60, full_every=3600)
    node = Node()
    ref = weakref.ref(node)
    policy.start(now=0.0)  # node is frozen while alive
    del node
    gc.collect()
    assert ref() is not None  # frozen: the collector does not see it

    assert policy.tick(now=60.0) == "freeze"
    assert ref() is not None
    assert policy.tick(now=3600.0) == "full"
    assert ref() is None
    assert gc.get_freeze_count() > 0  # frozen again after the full collection


def test_young_garbage_is_collected_before_a_freeze_not_frozen() -> None:
    policy = MemoryPolicy(freeze_every=60, full_every=0)
    policy.start(now=0.0)
    node = Node()
    ref = weakref.ref(node)
    del node
    assert policy.tick(now=60.0) == "freeze"
    assert ref() is None
    assert policy.tick(now=10**9) == "freeze"  # full_every 0: never a full collection


def test_off_when_freeze_every_is_zero() -> None:
    policy = MemoryPolicy(freeze_every=0, full_every=3600)
    policy.start(now=0.0)
    assert gc.get_freeze_count() == 0
    assert not policy.enabled


def test_the_server_section_configures_it_and_names_a_bad_value() -> None:
    config = parse_config(
        {"ami": {"secret": "s"}, "server": {"gc_freeze_every": 30, "gc_full_every": 0}}, env={}
    )
    assert (config.server.gc_freeze_every, config.server.gc_full_every) == (30.0, 0.0)
    assert load_config(ROOT / "config.toml", env={}).server.gc_freeze_every == 60.0

    with pytest.raises(ConfigError, match=r"server\.gc_freeze_every"):
        parse_config({"ami": {"secret": "s"}, "server": {"gc_freeze_every": -1}}, env={})


def test_while_it_runs_only_its_tick_walks_the_old_generation() -> None:
    """The collector's own schedule: young generations by the policy's clock
    (the collector's own trigger only as a backstop), the old one never on
    its own; the tick collects it (then freezes), and stop gives the
    schedule back."""
    before = gc.get_threshold()
    policy = MemoryPolicy(freeze_every=60, full_every=3600)
    policy.start(now=0.0)
    young, _, old = gc.get_threshold()
    assert young >= 10 * before[0] and old >= 10**9

    node = Node()
    ref = weakref.ref(node)
    gc.collect(1)  # as the collector's own young collections: node goes old
    del node
    # A server's worth of allocations, which the collector answers with
    # collections of its own (with its default schedule, old ones too).
    kept = [[n] for n in range(300_000)]
    assert ref() is not None  # none of its own reached the old generation
    assert policy.tick(now=60.0) == "freeze"
    assert ref() is None  # the tick did, before freezing
    assert len(kept) == 300_000
    policy.stop()
    assert gc.get_threshold() == before


async def test_cancelling_its_task_gives_the_collector_its_schedule_back() -> None:
    before = gc.get_threshold()
    policy = MemoryPolicy(freeze_every=3600, full_every=0)
    policy.start(now=0.0)
    assert gc.get_threshold() != before
    task = asyncio.ensure_future(policy.run())
    await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert gc.get_threshold() == before


def test_steps_collect_the_young_generations_by_the_clock_and_tick_when_due() -> None:
    policy = MemoryPolicy(freeze_every=60, full_every=3600, young_every=0.05)
    policy.start(now=0.0)
    node = Node()
    ref = weakref.ref(node)
    del node
    assert ref() is not None  # the collector's own trigger is far off

    assert policy.step(now=0.05) == "young"
    assert ref() is None  # young cyclic garbage: gone at the next step
    kinds = [policy.step(now=0.05 * n) for n in range(2, 11)]
    assert kinds == ["young"] * 3 + ["middle"] + ["young"] * 4 + ["middle"]
    assert policy.step(now=59.9) == "young"
    assert policy.step(now=60.0) == "freeze"
    assert policy.step(now=60.05) == "young"
    assert policy.step(now=3600.0) == "full"


async def test_run_steps_at_its_pace() -> None:
    policy = MemoryPolicy(freeze_every=1.0, full_every=0, young_every=0.25)
    policy.start(now=0.0)
    now = [0.0]
    slept: list[float] = []
    kinds: list[str] = []
    step = policy.step

    def recording_step(t: float) -> str:
        kinds.append(step(t))
        return kinds[-1]

    policy.step = recording_step  # type: ignore[method-assign]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        if len(slept) > 5:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await policy.run(clock=lambda: now[0], sleep=sleep)
    assert slept == [0.25] * 6
    assert kinds == ["young", "young", "young", "freeze", "young"]
