"""Callwright's hold (customer to music, agent parked) at its edges, as seen on
a real Asterisk 22.10.1 (tests/fixtures/ami-real/):

* a call put on hold from the agent's phone (a Hold event, the legs stay
  bridged) is not Callwright's hold: the Bridge action on two channels that
  already share a bridge answers "Unable to add Channel2 to bridge" and tears
  the call down, so un-holding it is refused;
* during an attended transfer's consultation, Bridge is refused by Asterisk
  and stops the customer's music, so un-holding is refused too;
* a customer who hangs up while held leaves the agent parked in Wait():
  Callwright hangs the agent's leg up."""

from __future__ import annotations

from sim.pbx.model import channel_headers
from tests.integration.conftest import Stack
from tests.integration.test_call_control import connect_inbound_to_agent


async def test_unhold_of_a_phone_hold_is_refused_and_keeps_the_call(stack: Stack) -> None:
    call = await connect_inbound_to_agent(stack, "1001")
    agent = next(ch for ch in stack.sim.channels() if ch.name.startswith("PJSIP/1001-"))
    # The agent presses hold on the phone: Asterisk reports Hold on its channel.
    stack.sim.emit("Hold", "call", channel_headers(agent))
    await stack.wait_calls(lambda cs: any(c["id"] == call["id"] and c["held"] for c in cs))

    status, body = await stack.post(f"/api/calls/{call['id']}/hold", {"hold": False})

    assert status == 409 and body["error"] == "wrong_state", body
    assert "from the phone" in body["message"]
    assert not any(a.name == "Bridge" for a in stack.sim.ami_actions_received)
    calls = await stack.calls()
    after = next(c for c in calls if c["id"] == call["id"])
    assert after["bridged"] and after["state"] == "held"


async def test_unhold_after_a_callwright_hold_bridges_the_legs_again(stack: Stack) -> None:
    call = await connect_inbound_to_agent(stack, "1001")
    status, body = await stack.post(f"/api/calls/{call['id']}/hold")
    assert status == 202, body
    await stack.wait_calls(
        lambda cs: any(c["id"] == call["id"] and c["held"] and not c["bridged"] for c in cs)
    )

    status, body = await stack.post(f"/api/calls/{call['id']}/hold", {"hold": False})

    assert status == 202, body
    await stack.wait_calls(
        lambda cs: any(
            c["id"] == call["id"] and c["bridged"] and not c["held"] and c["state"] == "up"
            for c in cs
        )
    )
    assert sum(a.name == "Bridge" for a in stack.sim.ami_actions_received) == 1


async def test_unhold_during_an_attended_transfer_is_refused(stack: Stack) -> None:
    call = await connect_inbound_to_agent(stack, "1001")
    status, body = await stack.post(
        f"/api/calls/{call['id']}/transfer",
        {"target": "1003", "kind": "attended", "idempotency_key": "at-hold"},
    )
    assert status == 202, body
    await stack.wait_calls(
        lambda cs: any(
            c["held"]
            and any(ch["device"] == "PJSIP/1003" and ch["bridge_id"] for ch in c["channels"])
            for c in cs
        )
    )

    status, body = await stack.post(f"/api/calls/{call['id']}/hold", {"hold": False})

    assert status == 409 and body["error"] == "wrong_state", body
    assert "attended transfer" in body["message"]
    assert not any(a.name == "Bridge" for a in stack.sim.ami_actions_received)


async def test_a_customer_hanging_up_on_hold_releases_the_parked_agent(stack: Stack) -> None:
    call = await connect_inbound_to_agent(stack, "1001")
    customer = next(ch for ch in stack.sim.channels() if ch.name.startswith("PJSIP/trunk-"))
    status, body = await stack.post(f"/api/calls/{call['id']}/hold")
    assert status == 202, body
    await stack.sim.wait_for_channels(
        lambda chans: any(ch.context == "callwright-agent-hold" for ch in chans)
    )

    await stack.sim.customer_hangup(customer.name)

    await stack.sim.wait_for_channels(lambda chans: not chans, timeout=10)
    await stack.wait_calls(lambda cs: all(c["id"] != call["id"] for c in cs))
    hangups = [a for a in stack.sim.ami_actions_received if a.name == "Hangup"]
    assert [a.get("Channel") for a in hangups] == [
        next(ch["name"] for ch in call["channels"] if ch["device"] == "PJSIP/1001")
    ]
