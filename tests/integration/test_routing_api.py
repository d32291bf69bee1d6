"""The routing API: tasks for other channels, agent state, reservations,
queue statistics live and from history, and bad input."""

from __future__ import annotations

import time
from typing import Any

from routing import model
from tests.integration.conftest import offered_to, queue_stats


async def test_a_callback_task_is_created_offered_and_completed(routed: Any) -> None:
    stack, recorder, agents = routed
    alice = agents["1001"]
    status, task = await stack.post(
        "/api/tasks",
        {
            "channel": "callback",
            "queue": "support",
            "priority": 5,
            "attributes": {"number": "+15550100009", "reason": "web form"},
        },
    )
    assert status == 201, task
    assert task["state"] == "waiting" and task["priority"] == 5
    status, body = await stack.post(f"/api/agents/{alice}/state", {"state": "available"})
    assert status == 200
    offer = await recorder.wait_for(offered_to(alice))
    assert offer.task_id == task["id"]
    status, body = await stack.post(f"/api/reservations/{offer.reservation_id}/accept")
    assert status == 200
    status, body = await stack.post(f"/api/tasks/{task['id']}/complete")
    assert status == 200, body
    await recorder.wait_for(lambda e: isinstance(e, model.TaskCompleted))
    status, body = await stack.get(f"/api/tasks/{task['id']}")
    assert status == 200 and body["state"] == "completed", body


async def test_live_statistics_equal_the_report_from_the_stored_log(routed: Any) -> None:
    stack, recorder, agents = routed
    alice = agents["1001"]
    await stack.post(f"/api/agents/{alice}/state", {"state": "available"})
    first = await stack.sim.inbound_call("+15550100001", "Ada Lovelace")
    offer = await recorder.wait_for(offered_to(alice))
    await stack.post(f"/api/reservations/{offer.reservation_id}/accept")
    await stack.wait_calls(lambda cs: any(c["bridged"] for c in cs))
    second = await stack.sim.inbound_call("+15550100002", "Alan Turing")
    await recorder.wait_for(
        lambda e: isinstance(e, model.TaskQueued) and e.task_id != offer.task_id
    )
    await stack.sim.customer_hangup(second.name)
    await recorder.wait_for(lambda e: isinstance(e, model.TaskCanceled))
    await stack.sim.customer_hangup(first.name)
    await recorder.wait_for(lambda e: isinstance(e, model.TaskCompleted))

    live = await queue_stats(stack)
    until = time.time() + 1
    status, report = await stack.get(f"/api/reports/queues?since=0&until={until}")
    assert status == 200, report
    history = report["queues"]["support"]
    for key in ("offered", "answered", "abandoned", "handled", "service_level"):
        assert history[key] == live[key], key
    assert (live["offered"], live["answered"], live["abandoned"]) == (2, 1, 1)
    assert history["survey"] == {"count": 0, "average": None}  # no caller answered one
    for query in ("since=abc", "since=nan", "since=-1", "since=0&until=1e300", "until=inf"):
        status, refused = await stack.get(f"/api/reports/queues?{query}")
        assert (status, refused["error"]) == (400, "invalid_request"), (query, refused)
        assert refused["message"].startswith("since/until: expected epoch seconds"), refused


async def test_unknown_ids_and_bad_values_are_4xx_and_change_nothing(routed: Any) -> None:
    stack, recorder, agents = routed
    before = len(recorder.events)
    cases = [
        ("/api/agents/999/state", {"state": "available"}, 404, "unknown_agent"),
        ("/api/agents/" + agents["1001"] + "/state", {"state": "dancing"}, 400, "invalid_request"),
        ("/api/reservations/r-404/accept", None, 404, "unknown_reservation"),
        ("/api/reservations/r-404/reject", None, 404, "unknown_reservation"),
        ("/api/tasks/t-404/complete", None, 404, "unknown_task"),
        ("/api/tasks", {"channel": "fax", "queue": "support"}, 400, "invalid_request"),
        ("/api/tasks", {"channel": "chat", "queue": "nope"}, 400, "invalid_request"),
        ("/api/tasks", {"channel": "chat", "queue": "support", "priority": "high"}, 400, None),
        (
            "/api/tasks",
            {"channel": "chat", "queue": "support", "attributes": {"x": [1]}},
            400,
            None,
        ),
    ]
    for path, body, status_expected, code in cases:
        status, result = await stack.post(path, body)
        assert status == status_expected, (path, body, result)
        if code is not None:
            assert result["error"] == code, (path, result)
        assert result["message"]
    status, result = await stack.get("/api/tasks/t-404")
    assert status == 404
    assert len(recorder.events) == before
    # Accepting a reservation twice is a conflict, not a crash.
    await stack.post(f"/api/agents/{agents['1001']}/state", {"state": "available"})
    await stack.post("/api/tasks", {"channel": "chat", "queue": "support"})
    offer = await recorder.wait_for(offered_to(agents["1001"]))
    assert (await stack.post(f"/api/reservations/{offer.reservation_id}/accept"))[0] == 200
    status, result = await stack.post(f"/api/reservations/{offer.reservation_id}/accept")
    assert status == 409 and result["error"] == "invalid_transition"


async def test_the_agent_report_gives_time_by_state_and_occupancy(routed: Any) -> None:
    """Alice goes available, takes a callback task and completes it; the report
    from the stored log says how long she was available and handling."""
    stack, recorder, agents = routed
    alice, bob = agents["1001"], agents["1002"]
    start = time.time() - 1
    await stack.post(f"/api/agents/{alice}/state", {"state": "available"})
    status, task = await stack.post(
        "/api/tasks", {"channel": "callback", "queue": "support", "attributes": {}}
    )
    assert status == 201, task
    offer = await recorder.wait_for(offered_to(alice))
    await stack.post(f"/api/reservations/{offer.reservation_id}/accept")
    await stack.post(f"/api/tasks/{task['id']}/complete")
    await recorder.wait_for(lambda e: isinstance(e, model.TaskCompleted))

    status, report = await stack.get(f"/api/reports/agents?since={start}")
    assert status == 200, report
    # The live figures (no period given: today, from memory) and the same
    # period folded from the stored log agree.
    status, live = await stack.get("/api/reports/agents")
    assert status == 200, live
    status, stored = await stack.get(
        f"/api/reports/agents?since={live['since']}&until={live['until']}"
    )
    assert stored["agents"][alice] == live["agents"][alice]
    mine = report["agents"][alice]
    assert {"available", "busy"} <= set(mine["seconds"])
    assert all(seconds >= 0 for seconds in mine["seconds"].values())
    assert 0 < mine["occupancy"] <= 100
    # Bob never changed state in the period: as he is now, offline all along.
    assert set(report["agents"][bob]["seconds"]) == {"offline"}
    assert report["agents"][bob]["occupancy"] is None

    for query in ("since=abc", "since=10&until=5", "until=1e300", "since=-5"):
        status, refused = await stack.get(f"/api/reports/agents?{query}")
        assert (status, refused["error"]) == (400, "invalid_request"), (query, refused)
        assert refused["message"].startswith("since/until: expected epoch seconds"), refused
