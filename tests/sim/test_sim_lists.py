"""List actions: EventList framing, items carrying the ActionID, the
Complete event with ListItems (02-core-status.txt, 04-redirect-bridge.txt)."""

from __future__ import annotations

from simtest_support import AmiClient, Connect

from sim.pbx import PbxSimulator

SNAPSHOT = [
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
]
BRIDGE = [
    "BridgeUniqueid",
    "BridgeType",
    "BridgeTechnology",
    "BridgeCreator",
    "BridgeName",
    "BridgeNumChannels",
    "BridgeVideoSourceMode",
]


def names(msg: object) -> list[str]:
    return [k for k, _ in msg.headers]  # type: ignore[attr-defined]


async def bridged_call(ami: AmiClient, sim: PbxSimulator) -> str:
    customer = await sim.inbound_call("5551234", "Test Caller")
    await ami.request(
        "Redirect",
        {"Channel": customer.name, "Context": "callwright-agent", "Exten": "1001", "Priority": "1"},
    )
    enter = await ami.event("BridgeEnter", Channel=customer.name)
    return enter["BridgeUniqueid"]


async def test_core_show_channels_empty(connect: Connect) -> None:
    client = await connect("admin", events="off")
    response, items, done = await client.request_list("CoreShowChannels")
    assert names(response) == ["Response", "ActionID", "EventList", "Message"]
    assert response.message == "Channels will follow"
    assert items == []
    assert names(done) == ["Event", "ActionID", "EventList", "ListItems"]
    assert (done.name, done["ListItems"]) == ("CoreShowChannelsComplete", "0")


async def test_core_show_channels_items_have_the_asterisk_header_set(
    ami: AmiClient, sim: PbxSimulator
) -> None:
    bridge_id = await bridged_call(ami, sim)
    _, items, done = await ami.request_list("CoreShowChannels")
    assert done["ListItems"] == "2"
    for item in items:
        assert names(item) == [
            "Event",
            "ActionID",
            *SNAPSHOT,
            "Application",
            "ApplicationData",
            "Duration",
            "BridgeId",
        ]
        assert item["BridgeId"] == bridge_id
    apps = sorted((i["Application"], i["ApplicationData"]) for i in items)
    assert apps == [("AppDial", "(Outgoing Line)"), ("Dial", "PJSIP/1001,30,tg")]


async def test_status_lists_channels_with_items_and_variables(
    ami: AmiClient, sim: PbxSimulator
) -> None:
    customer = await sim.inbound_call("5551234", "Test Caller")
    response, items, done = await ami.request_list(
        "Status", {"Channel": customer.name, "Variables": "CALLWRIGHT_DID,CHANNEL(state)"}
    )
    assert response.message == "Channel status will follow"
    [status] = items
    assert names(status)[:16] == ["Event", "Privilege", *SNAPSHOT]
    assert status["Privilege"] == "Call"
    assert status.get_all("Variable") == ["CALLWRIGHT_DID=5000", "CHANNEL(state)=Up"]
    assert names(status)[-1] == "ActionID"
    assert (done["ListItems"], done["Items"]) == ("1", "1")
    assert names(done) == ["Event", "ActionID", "EventList", "ListItems", "Items"]


async def test_bridge_list_and_bridge_info(ami: AmiClient, sim: PbxSimulator) -> None:
    bridge_id = await bridged_call(ami, sim)
    response, items, done = await ami.request_list("BridgeList")
    assert response.message == "Bridge listing will follow"
    [item] = items
    assert names(item) == ["Event", "ActionID", *BRIDGE]
    assert (item["BridgeUniqueid"], item["BridgeNumChannels"]) == (bridge_id, "2")
    assert done["ListItems"] == "1"
    response, items, done = await ami.request_list("BridgeInfo", {"BridgeUniqueid": bridge_id})
    assert response.message == "Bridge channel listing will follow"
    assert [names(i) for i in items] == [["Event", "ActionID", *SNAPSHOT]] * 2
    assert names(done) == ["Event", "ActionID", "EventList", "ListItems", *BRIDGE]


async def test_getvar_and_setvar_on_a_channel(ami: AmiClient, sim: PbxSimulator) -> None:
    customer = await sim.inbound_call("5551234", "Test Caller")
    assert (
        await ami.request("Setvar", {"Channel": customer.name, "Variable": "CW", "Value": "7"})
    ).message == "Variable Set"
    got = await ami.request("Getvar", {"Channel": customer.name, "Variable": "CW"})
    assert names(got) == ["Response", "ActionID", "Variable", "Value"]
    assert got["Value"] == "7"
    cid = await ami.request("Getvar", {"Channel": customer.name, "Variable": "CALLERID(all)"})
    assert cid["Value"] == '"Test Caller" <5551234>'
    missing = await ami.request("Getvar", {"Channel": customer.name, "Variable": "NOPE"})
    assert missing["Value"] == ""
