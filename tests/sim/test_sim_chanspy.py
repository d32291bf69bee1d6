"""ChanSpy in the simulator, as Callwright drives it (Originate of the
supervisor's phone to Application ChanSpy): the events of app_chanspy.c in
Asterisk 22 (ChanSpyStart and ChanSpyStop with the spyer's and the spyee's
snapshots; ChanSpyStop before the spyee's Hangup), how a session ends, the
modes, and the Originate permission check of manager.c."""

from __future__ import annotations

from simtest_support import AmiClient, Connect
from test_sim_calls import CHANNEL_SNAPSHOT, connect_to_agent, names

from sim.pbx import AmiUser, PbxSimulator


async def spy(ami: AmiClient, target: str, options: str, device: str = "1003") -> str:
    response = await ami.request(
        "Originate",
        {
            "Channel": f"PJSIP/{device}",
            "Application": "ChanSpy",
            "Data": f"{target},{options}",
            "Async": "true",
            "ChannelId": f"spy-{options}",
        },
    )
    assert response.message == "Originate successfully queued", response
    return f"spy-{options}"


async def test_listen_on_the_agents_leg_until_the_call_ends(
    ami: AmiClient, sim: PbxSimulator
) -> None:
    customer, agent = await connect_to_agent(ami, sim, "1001")
    spy_id = await spy(ami, agent.name, "qESu")

    start = await ami.event("ChanSpyStart", SpyerUniqueid=spy_id)
    assert names(start) == [
        "Event",
        "Privilege",
        *(f"Spyer{h}" for h in CHANNEL_SNAPSHOT),
        *(f"Spyee{h}" for h in CHANNEL_SNAPSHOT),
    ]
    assert start["Privilege"] == "call,all"
    assert start["SpyerChannel"].startswith("PJSIP/1003-")
    assert start["SpyerChannelStateDesc"] == "Up"
    assert (start["SpyeeChannel"], start["SpyeeUniqueid"]) == (agent.name, agent.uniqueid)
    # The supervisor's channel is its own call: ChanSpy joins no bridge.
    assert start["SpyerLinkedid"] == spy_id
    response = await ami.event("OriginateResponse", Uniqueid=spy_id)
    assert (response["Response"], response["Application"]) == ("Success", "ChanSpy")
    assert response["Data"] == f"{agent.name},qESu"
    [session] = sim.spies()
    assert (session.spyee, session.mode) == (agent, "listen")

    # E: the agent's leg hangs up, ChanSpy stops and the supervisor's phone is hung up.
    await sim.customer_hangup(customer.name)
    stop = await ami.event("ChanSpyStop", SpyerUniqueid=spy_id)
    assert names(stop) == names(start)
    assert stop["SpyeeChannel"] == agent.name
    hangup = await ami.event("Hangup", Uniqueid=spy_id)
    assert ami.messages.index(stop) < ami.messages.index(hangup)
    # ChanSpy still holds the agent's channel when it stops: that channel's
    # Hangup (sent when it is destroyed) comes after ChanSpyStop.
    agent_gone = await ami.event("Hangup", Channel=agent.name)
    assert ami.messages.index(stop) < ami.messages.index(agent_gone)
    assert not ami.events("SoftHangupRequest", Uniqueid=spy_id)  # no dialplan: no PBX to end
    assert sim.spies() == []
    await sim.wait_for_channels(lambda chans: not chans)


async def test_whisper_and_barge_are_the_sessions_mode(ami: AmiClient, sim: PbxSimulator) -> None:
    _, agent = await connect_to_agent(ami, sim, "1001")
    sim.add_endpoint("1009")
    await spy(ami, agent.name, "qESuw", device="1003")
    await spy(ami, agent.name, "qESuB", device="1009")
    await ami.event("ChanSpyStart", SpyerUniqueid="spy-qESuw")
    await ami.event("ChanSpyStart", SpyerUniqueid="spy-qESuB")
    modes = {s.spyer.name.split("-")[0]: s.mode for s in sim.spies()}
    assert modes == {"PJSIP/1003": "whisper", "PJSIP/1009": "barge"}


async def test_the_supervisor_hanging_up_ends_the_session_and_not_the_call(
    ami: AmiClient, sim: PbxSimulator
) -> None:
    customer, agent = await connect_to_agent(ami, sim, "1001")
    spy_id = await spy(ami, agent.name, "qESu")
    await ami.event("ChanSpyStart", SpyerUniqueid=spy_id)
    await sim.device_hangup("1003")
    await ami.event("ChanSpyStop", SpyerUniqueid=spy_id)
    await ami.event("Hangup", Uniqueid=spy_id)
    assert sim.spies() == []
    assert not customer.hungup and not agent.hungup
    assert customer.bridge_id == agent.bridge_id != ""


async def test_a_hangup_by_uniqueid_finds_the_spy_channel(
    ami: AmiClient, sim: PbxSimulator
) -> None:
    _, agent = await connect_to_agent(ami, sim, "1001")
    spy_id = await spy(ami, agent.name, "qESu")
    await ami.event("ChanSpyStart", SpyerUniqueid=spy_id)
    response = await ami.request("Hangup", {"Channel": spy_id, "Cause": "16"})
    assert response.message == "Channel Hungup"
    await ami.event("ChanSpyStop", SpyerUniqueid=spy_id)
    hangup = await ami.event("Hangup", Uniqueid=spy_id)
    assert hangup["Cause"] == "16"


async def test_option_u_on_a_channel_that_is_gone_leaves_at_once(
    ami: AmiClient, sim: PbxSimulator
) -> None:
    await spy(ami, "PJSIP/1001-000000ff", "qESu")
    await ami.event("Hangup", Uniqueid="spy-qESu")
    assert not ami.events("ChanSpyStart")
    assert sim.spies() == []


async def test_a_channel_that_spies_cannot_be_spied_on(ami: AmiClient, sim: PbxSimulator) -> None:
    _, agent = await connect_to_agent(ami, sim, "1001")
    first = await spy(ami, agent.name, "qESu")
    start = await ami.event("ChanSpyStart", SpyerUniqueid=first)
    sim.add_endpoint("1009")
    await spy(ami, start["SpyerChannel"], "qESuB", device="1009")
    await ami.event("Hangup", Uniqueid="spy-qESuB")
    assert [s.spyer.uniqueid for s in sim.spies()] == [first]


async def test_originate_of_a_system_application_needs_the_system_class(
    connect: Connect, sim: PbxSimulator
) -> None:
    # manager.c originate_app_permissions: ChanSpy is not on the list (the
    # originate class is enough); System, and functions such as SHELL in
    # Data, need the system class, which the callwright user has.
    ami = await connect("callwright")
    response = await ami.request(
        "Originate",
        {"Channel": "PJSIP/1002", "Application": "System", "Data": "true", "Async": "true"},
    )
    assert response.message == "Originate successfully queued"
    sim.users["origin-only"] = AmiUser.with_classes(
        "origin-secret", {"call"}, {"originate", "call"}
    )
    origin_only = await connect("origin-only", secret="origin-secret")
    for app, data, allowed in (
        ("System", "true", False),
        ("TrySystem", "true", False),
        ("NoOp", "${SHELL(true)}", False),
        ("Queue", "support,,,,,my-agi-script", False),
        ("Queue", "support", True),
        ("ChanSpy", "PJSIP/1001-00000001,qESu", True),
    ):
        response = await origin_only.request(
            "Originate",
            {"Channel": "PJSIP/1002", "Application": app, "Data": data, "Async": "true"},
        )
        if allowed:
            assert response.message == "Originate successfully queued", (app, response)
        else:
            assert response.message == "Originate Access Forbidden: app or data blacklisted", (
                app,
                response,
            )
