"""No stale screens: a client whose connection drops while events flow gets
exactly what it missed, in order, when it comes back (``resync``, or
``resume`` in the connect auth); a fresh snapshot when that is too old."""

from __future__ import annotations

from typing import Any

from tests.desk.conftest import DeskClient, DeskStack


async def drop(client: DeskClient) -> None:
    """Cut the TCP connection under the client, as a network failure would."""
    client.sio.eio.ws._conn.transport.abort()
    await client.wait(lambda: client.disconnects)


def missed_by(witness: DeskClient, seen: dict[str, int], until: dict[str, int]) -> dict[str, list]:
    """Per room, what the always-connected witness got after ``seen``."""
    per_room: dict[str, list[dict[str, Any]]] = {}
    for room in seen:
        got = [e for e in witness.envelopes if e["room"] == room and seen[room] < e["seq"]]
        got = [e for e in got if e["seq"] <= until[room]]
        per_room[room] = sorted(got, key=lambda e: e["seq"])
    return per_room


async def make_traffic(desk: DeskStack, witness: DeskClient, number: str) -> Any:
    before = len(witness.envelopes)
    caller = await desk.sim.inbound_call(number, "Caller")
    await witness.next_event(
        "task", lambda d: d["change"] == "queued", room="queue:support", after=before
    )
    await witness.next_event("call", lambda d: d["call"]["caller"]["number"] == number)
    return caller


async def test_a_dropped_supervisor_resyncs_and_receives_every_missed_event_in_order(
    desk: DeskStack,
) -> None:
    witness = await desk.connect("sue")
    flaky = await desk.connect("sue")
    first = await make_traffic(desk, witness, "+15550100011")
    await flaky.next_event("task", lambda d: d["change"] == "queued")
    await drop(flaky)
    seen = flaky.last_seqs()

    # Events flow while it is away: a second call queues, the first hangs up,
    # an agent changes state.
    await make_traffic(desk, witness, "+15550100012")
    before = len(witness.envelopes)
    await desk.sim.customer_hangup(first.name)
    await witness.next_event("task", lambda d: d["change"] == "canceled", after=before)
    await witness.next_event(
        "queue_stats", lambda d: d["figures"]["abandoned"] == 1 and d["figures"]["waiting"] == 1
    )
    assert desk.runtime.routing is not None
    await desk.runtime.routing.set_agent_state(desk.bob, "available")
    await witness.next_event("agent_state", lambda d: d["agent_id"] == desk.bob)

    await flaky.connect({"token": desk.tokens["sue"]})
    await flaky.wait(lambda: len(flaky.hellos) == 2)
    ack = await flaky.call("resync", {"rooms": seen, "epoch": flaky.hellos[0]["epoch"]})
    assert ack["ok"] and "snapshot" not in ack, ack
    missed = ack["missed"]
    until = ack["rooms"]
    expected = missed_by(witness, seen, until)
    for room in seen:
        replayed = [e for e in missed if e["room"] == room]
        # Every missed envelope, once, in sequence order, with no gap ...
        assert [e["seq"] for e in replayed] == list(range(seen[room] + 1, until[room] + 1))
        # ... and the same as a client that never left received.
        assert replayed == expected[room]
    kinds = {e["type"] for e in missed}
    assert {"queue_stats", "task", "call", "agent_state"} <= kinds


async def test_a_dropped_agent_resumes_on_connect_and_finds_the_offer_it_missed(
    desk: DeskStack,
) -> None:
    alice = await desk.connect("alice")
    await alice.call("set_state", {"state": "available"})
    await alice.next_event("agent_state", lambda d: d["state"] == "available")
    await drop(alice)
    seen = alice.last_seqs()
    epoch = alice.hello["epoch"]

    witness = await desk.connect("sue")
    await desk.sim.inbound_call("+15550100013", "Caller")
    await witness.next_event("agent_state", lambda d: d["state"] == "busy")

    await alice.connect({"token": desk.tokens["alice"], "resume": {"epoch": epoch, "rooms": seen}})
    await alice.wait(lambda: len(alice.hellos) == 2)
    hello = alice.hellos[-1]
    assert "snapshot" not in hello
    mine = [e for e in hello["missed"] if e["room"] == f"agent:{desk.alice}"]
    assert [e["seq"] for e in mine] == list(
        range(seen[f"agent:{desk.alice}"] + 1, hello["rooms"][f"agent:{desk.alice}"] + 1)
    )
    (offer,) = [e["data"] for e in mine if e["type"] == "offer"]
    assert offer["pop"]["caller_number"] == "+15550100013"
    ack = await alice.call("accept", {"reservation_id": offer["reservation_id"]})
    assert ack["ok"], ack


async def test_a_client_too_far_behind_gets_a_fresh_snapshot(desk: DeskStack) -> None:
    desk.runtime.desk.rooms.max_events = 2  # a short memory, to fall behind quickly
    witness = await desk.connect("sue")
    flaky = await desk.connect("sue")
    await drop(flaky)
    seen = flaky.last_seqs()
    for number in ("+15550100021", "+15550100022", "+15550100023"):
        await make_traffic(desk, witness, number)
    await witness.next_event("queue_stats", lambda d: d["figures"]["waiting"] == 3)

    await flaky.connect({"token": desk.tokens["sue"]})
    await flaky.wait(lambda: len(flaky.hellos) == 2)
    ack = await flaky.call("resync", {"rooms": seen, "epoch": flaky.hello["epoch"]})
    assert ack["ok"] and "missed" not in ack, ack
    snapshot = ack["snapshot"]
    assert snapshot["queues"][0]["figures"]["waiting"] == 3
    assert len(snapshot["waiting"]) == 3
    assert ack["rooms"]["queue:support"] > seen["queue:support"]


async def test_a_sequence_number_from_another_server_run_gets_a_snapshot(desk: DeskStack) -> None:
    sue = await desk.connect("sue")
    ack = await sue.call("resync", {"rooms": {"supervisors": 0}, "epoch": "an-earlier-run"})
    assert ack["ok"] and "snapshot" in ack and ack["epoch"] == sue.hello["epoch"]


async def test_resync_only_for_the_clients_own_rooms(desk: DeskStack) -> None:
    alice = await desk.connect("alice")
    ack = await alice.call("resync", {"rooms": {"supervisors": 0}})
    assert ack == {"ok": False, "error": "forbidden", "message": "not in room(s): supervisors"}


async def test_a_resume_that_leaves_out_one_of_the_rooms_gets_a_snapshot(desk: DeskStack) -> None:
    alice = await desk.connect("alice")
    epoch = alice.hello["epoch"]
    partial = {f"agent:{desk.alice}": 0}  # figures:support left out
    again = desk.client()
    await again.connect(
        {"token": desk.tokens["alice"], "resume": {"epoch": epoch, "rooms": partial}}
    )
    await again.wait(lambda: again.hellos)
    assert "snapshot" in again.hello and set(again.hello["rooms"]) == set(alice.hello["rooms"])


async def test_a_resync_of_one_room_answers_for_that_room_only(desk: DeskStack) -> None:
    alice = await desk.connect("alice")
    await alice.call("set_state", {"state": "available"})
    await alice.next_event("agent_state")
    mine = f"agent:{desk.alice}"
    ack = await alice.call("resync", {"rooms": {mine: 0}, "epoch": alice.hello["epoch"]})
    assert ack["ok"] and set(ack["rooms"]) == {mine}, ack
    assert [e["room"] for e in ack["missed"]] == [mine] * ack["rooms"][mine]
