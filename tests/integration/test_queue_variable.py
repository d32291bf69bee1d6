"""The whole stack: voice routing reads a new caller's CALLWRIGHT_QUEUE from
the call tracker, so an inbound call costs no Getvar round trip, whether the
variable is empty or the IVR set it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from cti.ami.messages import AmiAction
from cti.calls.model import QUEUE_VARIABLE
from routing import model
from routing.voice import CustomerMatch
from tests.integration.conftest import Recorder, Stack
from tests.integration.test_ivr_fastagi import ANN, OPEN, IvrStack, _stack


def queue_actions(actions: Sequence[AmiAction], name: str) -> list[tuple[str, str]]:
    return [
        (a.get("Channel") or "", a.get("Value") or "")
        for a in actions
        if a.name == name and a.get("Variable") == QUEUE_VARIABLE
    ]


async def test_an_inbound_caller_is_queued_with_no_getvar(
    routed: tuple[Stack, Recorder, dict[str, str]],
) -> None:
    stack, recorder, _agents = routed
    customer = await stack.sim.inbound_call("+15550100777", "Ada")
    event = await recorder.wait_for(lambda e: isinstance(e, model.TaskQueued))
    assert isinstance(event, model.TaskQueued) and event.queue_id == "support"
    await stack.runtime.calls.drain()
    received = stack.sim.ami_actions_received
    assert [a for a in received if a.name == "Getvar"] == []
    assert queue_actions(received, "Setvar") == []
    assert stack.runtime.calls.queue_getvars == 0
    assert stack.sim.pbx.get_var(customer, QUEUE_VARIABLE) == ""


@pytest.fixture
async def ivr_stack(tmp_path: Path) -> AsyncIterator[IvrStack]:
    async for stack in _stack(tmp_path, OPEN):
        yield stack


async def test_the_queue_the_ivr_set_is_read_from_the_events_and_cleared(
    ivr_stack: IvrStack,
) -> None:
    stack = ivr_stack
    call = asyncio.create_task(stack.sim.inbound_call(ANN, "Ann", "5000"))
    caller = await stack.caller(ANN)
    stack.sim.send_dtmf(caller.name, "1")  # English
    stack.sim.send_dtmf(caller.name, "1")  # billing: the IVR sets CALLWRIGHT_QUEUE
    customer = await asyncio.wait_for(call, 10)
    event = await stack.recorder.wait_for(lambda e: isinstance(e, model.TaskQueued))
    assert isinstance(event, model.TaskQueued) and event.queue_id == "billing"
    received = stack.sim.ami_actions_received
    assert [a for a in received if a.name == "Getvar"] == []
    # The value was read as set (only a set value is cleared), and cleared.
    assert queue_actions(received, "Setvar") == [(customer.name, "")]
    assert stack.sim.pbx.get_var(customer, QUEUE_VARIABLE) == ""
    assert stack.runtime.calls.queue_getvars == 0


async def test_a_caller_who_never_ran_the_ivr_costs_no_session_read_and_one_early_match(
    ivr_stack: IvrStack,
) -> None:
    from sqlalchemy import event

    stack = ivr_stack
    session_reads: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "ivr_sessions" in statement:
            session_reads.append(statement)

    event.listen(stack.runtime.engine.sync_engine, "before_cursor_execute", count)
    voice = stack.runtime.voice
    assert voice is not None
    matched: list[str] = []
    lookup = voice.lookup_customer

    async def counting_lookup(number: str) -> CustomerMatch | None:
        matched.append(number)
        return await lookup(number)

    voice.lookup_customer = counting_lookup
    try:
        # No FastAGI on this call: the caller goes straight to the holding point.
        agi_url, stack.sim.pbx.agi_url = stack.sim.pbx.agi_url, None
        await stack.sim.inbound_call(ANN, "Ann", "5000")
        queued = await stack.recorder.wait_for(lambda e: isinstance(e, model.TaskQueued))
        assert isinstance(queued, model.TaskQueued)
        task = stack.runtime.routing.router.task(queued.task_id)  # type: ignore[union-attr]
        assert task.customer_id == str(stack.ann_id)  # the caller-ID match, made once
        assert matched == [ANN]
        assert session_reads == []  # the tracker saw CALLWRIGHT_IVR_SESSION never set

        # Through the IVR: the session is read and its answers reach the task.
        stack.sim.pbx.agi_url = agi_url
        call = asyncio.create_task(stack.sim.inbound_call(ANN, "Ann", "5000"))
        caller = await stack.caller(ANN)
        stack.sim.send_dtmf(caller.name, "1")  # English
        stack.sim.send_dtmf(caller.name, "1")  # billing
        await asyncio.wait_for(call, 10)
        second = await stack.recorder.wait_for(
            lambda e: isinstance(e, model.TaskQueued) and e.task_id != queued.task_id
        )
        assert isinstance(second, model.TaskQueued) and second.queue_id == "billing"
        assert session_reads != []
        task = stack.runtime.routing.router.task(second.task_id)  # type: ignore[union-attr]
        assert "ivr_session" in task.attributes
    finally:
        event.remove(stack.runtime.engine.sync_engine, "before_cursor_execute", count)
