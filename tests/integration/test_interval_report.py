"""GET /api/reports/queues/intervals: today's figures per 15 minutes from the
stored routing log, over the real stack; the live figures agree with them."""

from __future__ import annotations

import time
from typing import Any

from routing import model
from tests.integration.conftest import offered_to, queue_stats


async def test_calls_land_in_the_current_interval_and_add_up_to_the_live_figures(
    routed: Any,
) -> None:
    stack, recorder, agents = routed
    alice = agents["1001"]
    await stack.post(f"/api/agents/{alice}/state", {"state": "available"})
    answered = await stack.sim.inbound_call("+15550100001", "Ada Lovelace")
    offer = await recorder.wait_for(offered_to(alice))
    await stack.post(f"/api/reservations/{offer.reservation_id}/accept")
    await stack.wait_calls(lambda cs: any(c["bridged"] for c in cs))
    abandoned = await stack.sim.inbound_call("+15550100002", "Alan Turing")
    await recorder.wait_for(
        lambda e: isinstance(e, model.TaskQueued) and e.task_id != offer.task_id
    )
    await stack.sim.customer_hangup(abandoned.name)
    await recorder.wait_for(lambda e: isinstance(e, model.TaskCanceled))
    await stack.sim.customer_hangup(answered.name)
    await recorder.wait_for(lambda e: isinstance(e, model.TaskCompleted))

    now = time.time()
    day = now - now % 86400
    status, body = await stack.get(f"/api/reports/queues/intervals?since={day}&until={now + 1}")
    assert status == 200, body
    assert body["interval_seconds"] == 900
    series = body["queues"]["support"]
    # Every quarter of the day so far, in order, the empty ones included.
    assert [s["start"] for s in series] == [day + 900 * i for i in range(len(series))]
    assert series[-1]["start"] <= now < series[-1]["end"]
    busy = [s for s in series if s["offered"]]
    assert sum(s["offered"] for s in series) == 2
    assert sum(s["answered"] for s in series) == 1
    assert sum(s["abandoned"] for s in series) == 1
    assert all(s["service_level"] is None for s in series if s not in busy)
    live = await queue_stats(stack)
    if len(busy) == 1:  # (unless the calls straddled a quarter hour)
        for name in ("offered", "answered", "abandoned", "service_level", "handled"):
            assert busy[0][name] == live[name], name


async def test_bad_ranges_and_interval_lengths_are_refused(routed: Any) -> None:
    stack, _, _ = routed
    for query, words in (
        ("seconds=60", "seconds: expected one of 300, 900, 1800, 3600"),
        ("since=10&until=5", "expected since < until"),
        ("since=0&until=1e9", "at most 3000 intervals"),
        ("since=yesterday", "expected epoch seconds"),
    ):
        status, body = await stack.get(f"/api/reports/queues/intervals?{query}")
        assert (status, body["error"]) == (400, "invalid_request"), query
        assert words in body["message"], (query, body)
