"""What tests of Callwright's AMI link need from the simulator: dropping and
freezing connections, and the record of every action received."""

from __future__ import annotations

import asyncio

from simtest_support import AmiClient, Connect

from cti.ami.messages import AmiAction, AmiResponse
from sim.load import CallLoad
from sim.pbx import PbxSimulator


async def test_drop_connections_closes_every_client_and_accepts_new_ones(
    sim: PbxSimulator, connect: Connect
) -> None:
    first = await connect()
    second = await connect()
    await sim.drop_connections()
    await asyncio.wait_for(first.closed.wait(), 5)
    await asyncio.wait_for(second.closed.wait(), 5)
    again = await connect()
    assert (await again.request("Ping")).ok


async def test_calls_survive_a_dropped_link(sim: PbxSimulator, connect: Connect) -> None:
    customer = await sim.inbound_call("5550001")
    await sim.drop_connections()
    client = await connect()
    _, items, _ = await client.request_list("CoreShowChannels")
    assert [i["Channel"] for i in items] == [customer.name]


async def test_frozen_link_answers_nothing_until_thawed(sim: PbxSimulator, ami: AmiClient) -> None:
    sim.freeze_connections()
    ami.send(AmiAction.build("Ping", action_id="while-frozen"))
    await sim.inbound_call("5550001")  # its events are lost
    await asyncio.sleep(0.05)
    assert not [
        m for m in ami.messages if isinstance(m, AmiResponse) and m.action_id == "while-frozen"
    ]
    assert not ami.events("Newchannel")
    assert not ami.closed.is_set()  # the socket stays open
    sim.freeze_connections(False)
    assert (await ami.response("while-frozen")).ok


async def test_actions_received_are_recorded_in_order(sim: PbxSimulator, ami: AmiClient) -> None:
    await ami.request("Ping")
    await ami.request("CoreStatus")
    assert [a.name for a in sim.ami_actions_received] == ["Login", "Ping", "CoreStatus"]


async def test_call_load_places_calls_that_reach_the_holding_point(sim: PbxSimulator) -> None:
    load = CallLoad(sim, rate_per_s=200, numbers=["+15550001", "+15550002"])
    load.start()
    await sim.wait_for_channels(lambda chans: len(chans) >= 10)
    await load.stop()
    await sim.wait_for_channels(lambda chans: len(chans) == load.placed, timeout=5)
    assert load.placed >= 10
    assert {c.caller_num for c in sim.channels()} == {"+15550001", "+15550002"}
    assert all(c.context == "callwright-hold" for c in sim.channels())
    assert load.reached_hold == load.placed and load.failed == 0


async def test_call_load_customers_hang_up_after_hold_seconds(sim: PbxSimulator) -> None:
    load = CallLoad(sim, rate_per_s=100, hold_seconds=0.0)
    load.start()
    await sim.pbx.wait_for(lambda: load.hung_up >= 5, timeout=5)
    await load.stop()
    await sim.wait_for_channels(lambda chans: not chans, timeout=5)
    assert load.hung_up == load.reached_hold


async def test_stop_leaves_no_task_behind() -> None:
    simulator = PbxSimulator(answer_delay=0.0, login_failure_delay=0.0)
    await simulator.start()
    before = asyncio.all_tasks()
    await simulator.inbound_call("5550001")
    reader, writer = await asyncio.open_connection(simulator.host, simulator.port)
    await reader.readline()
    await simulator.stop()
    writer.close()
    await asyncio.sleep(0)
    leftovers = asyncio.all_tasks() - before - {asyncio.current_task()}
    assert not [t for t in leftovers if not t.done()]
