"""What a supervisor's wallboard receives: queue figures as calls queue and
leave, agents' states, calls, waiting tasks."""

from __future__ import annotations

from tests.desk.conftest import DeskStack


async def test_a_supervisor_sees_the_queue_change_when_a_call_queues_and_abandons(
    desk: DeskStack,
) -> None:
    sue = await desk.connect("sue")
    assert sue.hello["snapshot"]["queues"][0]["figures"]["waiting"] == 0

    caller = await desk.sim.inbound_call("+15550100002", "Alan Turing")
    waiting = await sue.next_event("queue_stats", lambda d: d["figures"]["waiting"] == 1)
    assert waiting["room"] == "queue:support"
    figures = waiting["data"]["figures"]
    assert figures["offered"] == 1 and figures["abandoned"] == 0
    assert waiting["data"]["name"] == "support" and waiting["data"]["service_level_seconds"] == 20
    queued = await sue.next_event("task", lambda d: d["change"] == "queued")
    assert queued["data"]["state"] == "waiting" and queued["data"]["channel"] == "voice"
    call = await sue.next_event("call", lambda d: d["call"]["caller"]["number"] == "+15550100002")
    assert call["room"] == "supervisors"

    await desk.sim.customer_hangup(caller.name)
    after = await sue.next_event(
        "queue_stats", lambda d: d["figures"]["waiting"] == 0 and d["figures"]["abandoned"] == 1
    )
    assert after["seq"] > waiting["seq"]
    await sue.next_event("task", lambda d: d["change"] == "canceled")


async def test_a_supervisor_sees_agents_change_state_with_the_time_of_the_change(
    desk: DeskStack,
) -> None:
    sue = await desk.connect("sue")
    alice = await desk.connect("alice")
    ack = await alice.call("set_state", {"state": "break", "reason": "lunch"})
    assert ack["ok"], ack
    change = await sue.next_event("agent_state", lambda d: d["agent_id"] == desk.alice)
    assert change["room"] == "supervisors"
    data = change["data"]
    assert data["state"] == "break" and data["reason"] == "lunch"
    assert data["previous"] == "offline" and data["since"] > 0
    assert data["name"] == "Alice" and data["queues"] == ["support"]
    # The agent hears of their own change too.
    mine = await alice.next_event("agent_state", room=f"agent:{desk.alice}")
    assert mine["data"]["state"] == "break"


async def test_a_supervisor_connecting_later_finds_the_waiting_call_in_the_snapshot(
    desk: DeskStack,
) -> None:
    watcher = await desk.connect("sue")
    await desk.sim.inbound_call("+15550100003", "Grace Hopper")
    await watcher.next_event("task", lambda d: d["change"] == "queued")
    sue = await desk.connect("sue")
    snapshot = sue.hello["snapshot"]
    (task,) = snapshot["waiting"]
    assert task["state"] == "waiting" and task["attributes"] == {"caller_number": "+15550100003"}
    assert snapshot["queues"][0]["figures"]["waiting"] == 1
    (call,) = snapshot["calls"]
    assert call["call"]["caller"]["number"] == "+15550100003"
    assert call["task_id"] == task["task_id"]


async def test_the_current_intervals_figures_follow_a_call_that_queues_and_abandons(
    desk: DeskStack,
) -> None:
    sue = await desk.connect("sue")
    caller = await desk.sim.inbound_call("+15550100004", "Ada Lovelace")
    offered = await sue.next_event("queue_interval", lambda d: d["offered"] == 1)
    assert offered["room"] == "supervisors"
    data = offered["data"]
    assert (data["queue_id"], data["interval_seconds"]) == ("support", 900)
    assert data["end"] - data["start"] == 900 and data["start"] % 900 == 0
    assert data["start"] <= offered["at"] < data["end"]
    assert data["abandoned"] == 0 and data["service_level"] is None

    await desk.sim.customer_hangup(caller.name)
    gone = await sue.next_event("queue_interval", lambda d: d["abandoned"] == 1)
    assert gone["seq"] > offered["seq"]
    # The same figures as the stored report of that interval.
    report = await desk.runtime.routing.journal.events(since=data["start"])
    assert sum(1 for e in report if type(e).__name__ == "TaskQueued") == gone["data"]["offered"]
