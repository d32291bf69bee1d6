"""What an agent's connection carries: its own tasks and its queues' figures,
not every change of every task of the queue (that stream is the supervisors')."""

from __future__ import annotations

import asyncio

from tests.desk.conftest import DeskStack


async def test_an_agent_sees_the_queue_figures_but_not_other_callers_tasks(
    desk: DeskStack,
) -> None:
    sue = await desk.connect("sue")
    alice = await desk.connect("alice")  # offline: the caller waits in the queue
    await desk.sim.inbound_call("+15550100031", "Waiting Caller")

    queued = await sue.next_event("task", lambda d: d["change"] == "queued", room="queue:support")
    figures = await alice.next_event(
        "queue_stats", lambda d: d["figures"]["waiting"] == 1, room="figures:support"
    )
    assert figures["data"]["queue_id"] == "support"
    # The supervisor's stream carries the task; the agent's carries none of it.
    assert queued["data"]["agent_id"] is None
    assert [e for e in alice.envelopes if e["type"] == "task"] == []
    assert {e["room"] for e in alice.envelopes} <= {f"agent:{desk.alice}", "figures:support"}


async def test_a_queues_figures_reach_every_agent_of_a_room_larger_than_one_paced_slice(
    desk: DeskStack,
) -> None:
    from agent_desk.notifier import PACED_SLICE

    # Desks of one agent open in many tabs: all of them are in the figures room.
    tabs = [await desk.connect("alice") for _ in range(2 * PACED_SLICE + 1)]
    await desk.sim.inbound_call("+15550100032", "Waiting Caller")

    seen = [
        await tab.next_event(
            "queue_stats", lambda d: d["figures"]["waiting"] == 1, room="figures:support"
        )
        for tab in tabs
    ]
    # One update, the same envelope (sequence number) for every tab.
    assert len({(e["seq"], e["room"]) for e in seen}) == 1


async def test_agents_get_the_figures_again_only_when_what_their_desk_shows_changes(
    desk: DeskStack,
) -> None:
    """An agent's desk shows each queue's waiting count and longest wait (it
    counts the wait up by itself): a change of anything else (here the agents'
    states, which the supervisors' figures count) sends the agents nothing."""
    sue = await desk.connect("sue")
    alice = await desk.connect("alice")  # offline: the caller waits
    caller = await desk.sim.inbound_call("+15550100033", "Waiting Caller")
    await alice.next_event(
        "queue_stats", lambda d: d["figures"]["waiting"] == 1, room="figures:support"
    )
    shown = len(alice.of("queue_stats"))
    assert desk.runtime.routing is not None
    await desk.runtime.routing.set_agent_state(desk.bob, "break", "lunch")
    # The supervisors' figures count bob on break ...
    await sue.next_event(
        "queue_stats",
        lambda d: d["figures"]["agents_by_state"].get("break") == 1,
        room="queue:support",
    )
    await asyncio.sleep(1.5)  # longer than the agents' update interval (1 s)
    # ... the agents' desks were sent nothing new.
    assert len(alice.of("queue_stats")) == shown
    await desk.sim.customer_hangup(caller.name)
    gone = await alice.next_event(
        "queue_stats", lambda d: d["figures"]["waiting"] == 0, room="figures:support"
    )
    assert gone["data"]["figures"]["abandoned"] == 1  # and the rest is up to date
