"""AMI actions: parameter checks and replies with Asterisk 22's exact texts
(``main/manager.c``, ``main/features.c``, ``main/manager_bridges.c``,
``apps/app_mixmonitor.c``; every text used in ``tests/fixtures/ami/`` is
reproduced verbatim), and the write class each action needs.

A handler gets the session and the action; it writes its reply with
``session.reply(...)`` *before* it changes the PBX, so the events the change
causes reach the client after the reply, as with Asterisk.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cti.ami.messages import AmiAction, AmiEvent, AmiResponse
from sim.pbx.engine import Pbx, parse_callerid
from sim.pbx.model import SimChannel, bridge_headers, channel_headers

if TYPE_CHECKING:
    from sim.pbx.server import AmiSession

__all__ = ["ACTIONS", "ActionSpec"]

Handler = Callable[["AmiSession", AmiAction], Awaitable[None]]

ASTERISK_VERSION = "22.10.1"
AMI_VERSION = "11.0.0"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str
    handler: Handler
    # Any one of these write classes allows the action (manager.c checks
    # ``writeperm & authority``); empty: every logged-in user.
    classes: frozenset[str]


def _h(action: AmiAction, name: str) -> str:
    """astman_get_header: the first value, "" when missing."""
    return action.get(name) or ""


def _ack(
    session: AmiSession, action: AmiAction, message: str | None, *extra: tuple[str, str]
) -> None:
    headers: list[tuple[str, str]] = []
    if message is not None:
        headers.append(("Message", message))
    headers.extend(extra)
    session.reply(AmiResponse.build("Success", action.action_id or None, headers))


def _error(session: AmiSession, action: AmiAction, message: str) -> None:
    session.reply(AmiResponse.build("Error", action.action_id or None, [("Message", message)]))


def _list_start(session: AmiSession, action: AmiAction, message: str) -> None:
    session.reply(
        AmiResponse.build(
            "Success", action.action_id or None, [("EventList", "start"), ("Message", message)]
        )
    )


def _list_item(
    session: AmiSession, action: AmiAction, event: str, headers: list[tuple[str, str]]
) -> None:
    aid = [("ActionID", action.action_id)] if action.action_id else []
    session.reply(AmiEvent((("Event", event), *aid, *headers)))


def _list_complete(
    session: AmiSession, action: AmiAction, event: str, count: int, *extra: tuple[str, str]
) -> None:
    aid = [("ActionID", action.action_id)] if action.action_id else []
    session.reply(
        AmiEvent(
            (("Event", event), *aid, ("EventList", "Complete"), ("ListItems", str(count)), *extra)
        )
    )


# --------------------------------------------------------------- protocol


async def ping(session: AmiSession, action: AmiAction) -> None:
    now = time.time()
    _ack(session, action, None, ("Ping", "Pong"), ("Timestamp", f"{now:.6f}"))


async def events(session: AmiSession, action: AmiAction) -> None:
    mask = _h(action, "EventMask")
    result = session.set_eventmask(mask)
    if result is None:
        _error(session, action, "Invalid event mask")
        return
    _ack(session, action, None, ("Events", "On" if result else "Off"))


async def filter_action(session: AmiSession, action: AmiAction) -> None:
    operation = _h(action, "Operation")
    if operation.lower() != "add":
        _error(session, action, "Unknown operation")
        return
    expr = _h(action, "Filter")
    exclude = expr.startswith("!")
    if exclude:
        expr = expr[1:]
    try:
        regex = re.compile(expr)
    except re.error:
        _error(session, action, "Filter did not compile.  Check the syntax of the filter given.")
        return
    (session.exclude_filters if exclude else session.include_filters).append(regex)
    _ack(session, action, "Success")


async def core_settings(session: AmiSession, action: AmiAction) -> None:
    _ack(
        session,
        action,
        None,
        ("AMIversion", AMI_VERSION),
        ("AsteriskVersion", ASTERISK_VERSION),
        ("SystemName", ""),
        ("CoreMaxCalls", "0"),
        ("CoreMaxLoadAvg", "0.000000"),
        ("CoreRunUser", ""),
        ("CoreRunGroup", ""),
        ("CoreMaxFilehandles", "0"),
        ("CoreRealTimeEnabled", "No"),
        ("CoreCDRenabled", "No"),
        ("CoreHTTPenabled", "No"),
        ("SoundsSearchCustomDir", "No"),
    )


async def core_status(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    started = time.localtime(pbx.started)
    _ack(
        session,
        action,
        None,
        ("CoreStartupDate", time.strftime("%Y-%m-%d", started)),
        ("CoreStartupTime", time.strftime("%H:%M:%S", started)),
        ("CoreReloadDate", time.strftime("%Y-%m-%d", started)),
        ("CoreReloadTime", time.strftime("%H:%M:%S", started)),
        ("CoreCurrentCalls", str(len(pbx.channels))),
        ("CoreProcessedCalls", str(pbx.processed_calls)),
    )


def _duration_text(seconds: int) -> str:
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    if seconds or not parts:
        parts.append(f"{seconds} second{'s' if seconds != 1 else ''}")
    return ", ".join(parts)


async def command(session: AmiSession, action: AmiAction) -> None:
    cmd = _h(action, "Command")
    if not cmd:
        _error(session, action, "No command provided")
        return
    words = cmd.split()
    uptime = int(time.time() - session.sim.pbx.started)
    outputs: list[str] | None = None
    if words == ["core", "show", "version"]:
        outputs = [f"Asterisk {ASTERISK_VERSION} built by callwright-sim on a simulator"]
    elif words == ["core", "show", "uptime"]:
        outputs = [
            f"System uptime: {_duration_text(uptime)}",
            f"Last reload: {_duration_text(uptime)}",
        ]
    elif words[:3] == ["manager", "show", "connected"]:
        outputs = [
            "  Username         IP Address       Start       Elapsed     FileDes   HttpCnt"
            "   ReadPerms   WritePerms"
        ]
        users = [s for s in session.sim.sessions if s.username]
        for other in users:
            elapsed = int(time.time() - other.started)
            outputs.append(
                f"  {other.username:<16} {other.peer_host:<16} {int(other.started):<11}"
                f" {elapsed:<11} -1        0         -           -"
            )
        outputs.append(f"{len(users)} users connected.")
    if outputs is None:
        hint = " ".join(words[:2]) if len(words) > 2 else " ".join(words[:1])
        session.reply(
            AmiResponse.build(
                "Error",
                action.action_id or None,
                [
                    ("Message", "Command output follows"),
                    (
                        "Output",
                        f"No such command '{cmd}' (type 'core show help {hint}'"
                        " for other possible commands)",
                    ),
                ],
            )
        )
        return
    session.reply(
        AmiResponse.build(
            "Success",
            action.action_id or None,
            [("Message", "Command output follows"), *(("Output", line) for line in outputs)],
        )
    )


# ------------------------------------------------------------------- lists


async def core_show_channels(session: AmiSession, action: AmiAction) -> None:
    _list_start(session, action, "Channels will follow")
    now = time.monotonic()
    chans = list(session.sim.pbx.channels.values())
    for ch in chans:
        duration = int(now - ch.created)
        h, rest = divmod(duration, 3600)
        m, s = divmod(rest, 60)
        _list_item(
            session,
            action,
            "CoreShowChannel",
            [
                *channel_headers(ch),
                ("Application", ch.application),
                ("ApplicationData", ch.app_data),
                ("Duration", f"{h:02d}:{m:02d}:{s:02d}"),
                ("BridgeId", ch.bridge_id),
            ],
        )
    _list_complete(session, action, "CoreShowChannelsComplete", len(chans))


def _status_event(
    session: AmiSession, ch: SimChannel, variables: list[str], action: AmiAction
) -> AmiEvent:
    pbx = session.sim.pbx
    formats = "(slin)" if ch.tech == "Local" else "(ulaw)"
    fmt = "slin" if ch.tech == "Local" else "ulaw"
    headers: list[tuple[str, str]] = [
        ("Event", "Status"),
        ("Privilege", "Call"),
        *channel_headers(ch),
        ("Type", ch.tech),
        ("DNID", ch.dnid),
        (
            "EffectiveConnectedLineNum",
            ch.connected_num if ch.connected_num is not None else "<unknown>",
        ),
        (
            "EffectiveConnectedLineName",
            ch.connected_name if ch.connected_name is not None else "<unknown>",
        ),
        ("TimeToHangup", "0"),
        ("BridgeID", ch.bridge_id),
        ("Application", ch.application),
        ("Data", ch.app_data),
        ("Nativeformats", formats),
        ("Readformat", fmt),
        ("Readtrans", ""),
        ("Writeformat", fmt),
        ("Writetrans", ""),
        ("Callgroup", "0"),
        ("Pickupgroup", "0"),
        ("Seconds", str(int(time.monotonic() - ch.created))),
    ]
    for name in variables:
        headers.append(("Variable", f"{name}={pbx.get_var(ch, name)}"))
    if action.action_id:
        headers.append(("ActionID", action.action_id))
    return AmiEvent(tuple(headers))


async def status(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    name = _h(action, "Channel")
    variables = [v.strip() for v in _h(action, "Variables").split(",") if v.strip()]
    if name:
        ch = pbx.find(name)
        if ch is None:
            _error(session, action, "No such channel")
            return
        chans = [ch]
    else:
        chans = list(pbx.channels.values())
    _list_start(session, action, "Channel status will follow")
    for ch in chans:
        session.reply(_status_event(session, ch, variables, action))
    _list_complete(session, action, "StatusComplete", len(chans), ("Items", str(len(chans))))


async def bridge_list(session: AmiSession, action: AmiAction) -> None:
    bridges = list(session.sim.pbx.bridges.values())
    bridge_type = _h(action, "BridgeType")
    if bridge_type:
        bridges = [b for b in bridges if b.bridge_type == bridge_type]
    _list_start(session, action, "Bridge listing will follow")
    for bridge in bridges:
        _list_item(session, action, "BridgeListItem", bridge_headers(bridge))
    _list_complete(session, action, "BridgeListComplete", len(bridges))


async def bridge_info(session: AmiSession, action: AmiAction) -> None:
    bridge_id = _h(action, "BridgeUniqueid")
    if not bridge_id:
        _error(session, action, "BridgeUniqueid must be provided")
        return
    bridge = session.sim.pbx.bridges.get(bridge_id)
    if bridge is None:
        _error(session, action, "Specified BridgeUniqueid not found")
        return
    _list_start(session, action, "Bridge channel listing will follow")
    members = list(bridge.channels)
    for ch in members:
        _list_item(session, action, "BridgeInfoChannel", channel_headers(ch))
    _list_complete(session, action, "BridgeInfoComplete", len(members), *bridge_headers(bridge))


async def core_show_channel_map(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    name = _h(action, "Channel")
    if not name:
        _error(session, action, "Channel must be provided")
        return
    ch = pbx.find(name)
    if ch is None:
        _error(session, action, f"Channel does not exist: {name}")
        return
    # Start from the channels bridged with it, then follow Local channel
    # halves and their bridges (not the channel's own Local half).
    seen: list[SimChannel] = []
    todo = [ch]
    while todo:
        cur = todo.pop(0)
        neighbours: list[SimChannel] = []
        if cur.bridge is not None:
            neighbours += [c for c in cur.bridge.channels if c is not cur]
        if cur is not ch and cur.peer is not None and not cur.peer.hungup:
            neighbours.append(cur.peer)
        for other in neighbours:
            if other is not ch and other not in seen:
                seen.append(other)
                todo.append(other)
    _list_start(session, action, "Channel map will follow")
    for other in seen:
        _list_item(
            session,
            action,
            "CoreShowChannelMap",
            [("Channel", ch.name), ("ConnectedChannel", other.name)],
        )
    _list_complete(session, action, "CoreShowChannelMapComplete", len(seen))


# --------------------------------------------------------------- variables


async def getvar(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    name = _h(action, "Channel")
    variable = _h(action, "Variable")
    if not variable:
        _error(session, action, "No variable specified")
        return
    ch = None
    if name:
        ch = pbx.find(name)
        if ch is None:
            _error(session, action, "No such channel")
            return
    _ack(session, action, None, ("Variable", variable), ("Value", pbx.get_var(ch, variable)))


async def setvar(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    name = _h(action, "Channel")
    variable = _h(action, "Variable")
    if not variable:
        _error(session, action, "No variable specified")
        return
    ch = None
    if name:
        ch = pbx.find(name)
        if ch is None:
            _error(session, action, "No such channel")
            return
    _ack(session, action, "Variable Set")
    pbx.set_var(ch, variable, _h(action, "Value"))


# ---------------------------------------------------------------- calls


async def originate(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    name = _h(action, "Channel")
    exten = _h(action, "Exten")
    context = _h(action, "Context")
    priority = _h(action, "Priority")
    timeout_text = _h(action, "Timeout")
    app = _h(action, "Application")
    app_data = _h(action, "Data")
    is_async = _true(_h(action, "Async"))
    if not name:
        _error(session, action, "Channel not specified")
        return
    pi = 0
    if priority:
        number = re.match(r"\s*(-?\d+)", priority)
        if number is not None:
            pi = int(number.group(1))
        else:
            found = pbx.dialplan.label(context, exten, priority)
            if found is None:
                _error(session, action, "Invalid priority")
                return
            pi = found
    timeout_ms = 30000
    if timeout_text:
        match = re.match(r"\s*(-?\d+)", timeout_text)
        if match is None:
            _error(session, action, "Invalid timeout")
            return
        timeout_ms = int(match.group(1))
    tech, sep, resource = name.partition("/")
    if not sep:
        _error(session, action, "Invalid channel")
        return
    cid_name, cid_num = (
        parse_callerid(_h(action, "CallerID")) if _h(action, "CallerID") else (None, None)
    )
    write = session.user.write if session.user is not None else frozenset()
    if app and not _originate_app_permitted(app, app_data, write):
        _error(session, action, "Originate Access Forbidden: app or data blacklisted")
        return
    if exten and context and pi and not pbx.dialplan.exists(context, exten, pi):
        _error(session, action, "Extension does not exist.")
        return
    variables: list[tuple[str, str]] = []
    for raw in action.get_all("Variable"):
        for item in raw.split(","):
            var, eq, value = item.partition("=")
            if eq:
                variables.append((var.strip(), value))
    ids = (_h(action, "ChannelId") or None, _h(action, "OtherChannelId") or None)
    if not app and not (exten and context and pi):
        if not is_async:
            _error(session, action, "Originate with 'Exten' requires 'Context' and 'Priority'")
            return

    def launch(emit_response: bool) -> Coroutine[Any, Any, bool]:
        return pbx.originate(
            tech=tech,
            resource=resource,
            context=context,
            exten=exten,
            priority=pi or 1,
            application=app,
            app_data=app_data,
            cid_num=cid_num,
            cid_name=cid_name,
            variables=variables,
            timeout=max(timeout_ms, 0) / 1000.0,
            ids=ids,
            action_id=action.action_id or None,
            emit_response=emit_response,
        )

    if is_async:
        _ack(session, action, "Originate successfully queued")
        pbx.spawn(launch(True))
        return
    ok = await launch(False)
    if ok:
        _ack(session, action, "Originate successfully queued")
    else:
        _error(session, action, "Originate failed")


# manager.c originate_app_permissions[] (Asterisk 22): the first matching
# entry decides; its classes are the ones the user needs. Applications match
# case-insensitively anywhere in the name, dialplan functions case-sensitively
# anywhere in Data. Queue needs them only with its AGI argument (the 6th).
_ORIGINATE_APPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("agi", frozenset({"system"})),
    ("dbdeltree", frozenset({"system"})),
    ("exec", frozenset({"system"})),
    ("externalivr", frozenset({"system"})),
    ("mixmonitor", frozenset({"system"})),
    ("originate", frozenset({"system"})),
    ("reload", frozenset({"system"})),
    ("system", frozenset({"system"})),
)
_ORIGINATE_DATA: tuple[str, ...] = ("CURL", "DB", "EVAL", "FILE", "ODBC", "REALTIME", "SHELL")


def _originate_app_permitted(app: str, data: str, write: frozenset[str]) -> bool:
    lowered = app.lower()
    for search, needed in _ORIGINATE_APPS:
        if search in lowered:
            return bool(needed & write)
    if "queue" in lowered and data:
        args = data.split(",")
        if len(args) > 5 and args[5]:
            return bool({"agi", "system"} & write)
    for search in _ORIGINATE_DATA:
        if search in data:
            return "system" in write
    return True


async def redirect(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    name = _h(action, "Channel")
    name2 = _h(action, "ExtraChannel")
    exten, exten2 = _h(action, "Exten"), _h(action, "ExtraExten")
    context, context2 = _h(action, "Context"), _h(action, "ExtraContext")
    priority, priority2 = _h(action, "Priority"), _h(action, "ExtraPriority")
    if not name:
        _error(session, action, "Channel not specified")
        return
    if not context:
        _error(session, action, "Context not specified")
        return
    if not exten:
        _error(session, action, "Exten not specified")
        return
    if not priority:
        _error(session, action, "Priority not specified")
        return
    pi = _priority(pbx, context, exten, priority)
    if pi < 1:
        _error(session, action, "Priority is invalid")
        return
    pi2 = 0
    if name2 and context2:
        if not exten2:
            _error(session, action, "ExtraExten not specified")
            return
        if not priority2:
            _error(session, action, "ExtraPriority not specified")
            return
        pi2 = _priority(pbx, context2, exten2, priority2)
        if pi2 < 1:
            _error(session, action, "ExtraPriority is invalid")
            return
    ch = pbx.find(name)
    if ch is None:
        _error(session, action, f"Channel does not exist: {name}")
        return
    if ch.hangup_requested:
        _error(session, action, "Redirect failed, channel not up.")
        return
    if not name2:
        _ack(session, action, "Redirect successful")
        pbx.redirect(ch, context, exten, pi)
        return
    ch2 = pbx.find(name2)
    if ch2 is None:
        _error(session, action, f"ExtraChannel does not exist: {name2}")
        return
    if ch2.hangup_requested:
        _error(session, action, "Redirect failed, extra channel not up.")
        return
    target2 = (context2, exten2, pi2) if context2 else (context, exten, pi)
    _ack(session, action, "Dual Redirect successful")
    pbx.dual_redirect(ch, ch2, (context, exten, pi), target2)


def _priority(pbx: Pbx, context: str, exten: str, text: str) -> int:
    match = re.match(r"\s*(-?\d+)", text)
    if match is not None:
        return int(match.group(1))
    found = pbx.dialplan.label(context, exten, text)
    return found if found is not None else -1


async def hangup(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    target = _h(action, "Channel")
    cause_text = _h(action, "Cause")
    if not target:
        _error(session, action, "No channel specified")
        return
    cause = 0
    if cause_text:
        try:
            cause = int(cause_text)
        except ValueError:
            cause = 0
        if not 0 <= cause <= 127:
            cause = 0
    if not target.startswith("/"):
        ch = pbx.find(target)
        if ch is None:
            _error(session, action, "No such channel")
            return
        _ack(session, action, "Channel Hungup")
        pbx.request_hangup(ch, cause)
        return
    if len(target) < 2 or not target.endswith("/"):
        _error(session, action, "Regex format invalid, Channel param should be /regex/")
        return
    try:
        regex = re.compile(target[1:-1])
    except re.error:
        _error(session, action, f"Regex compile failed on: {target}")
        return
    _list_start(session, action, "Channels hung up will follow")
    matched = 0
    for ch in list(pbx.channels.values()):
        if regex.search(ch.name) is None:
            continue
        pbx.request_hangup(ch, cause)
        matched += 1
        aid = [("ActionID", action.action_id)] if action.action_id else []
        session.reply(AmiEvent((("Event", "ChannelHungup"), ("Channel", ch.name), *aid)))
    _list_complete(session, action, "ChannelsHungupListComplete", matched)


async def blind_transfer(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    name = _h(action, "Channel")
    exten = _h(action, "Exten")
    context = _h(action, "Context")
    if not name:
        _error(session, action, "No channel specified")
        return
    if not exten:
        _error(session, action, "No extension specified")
        return
    ch = pbx.find(name)
    if ch is None:
        _error(session, action, "Channel specified does not exist")
        return
    if not context:
        context = ch.context
    bridge = ch.bridge
    if bridge is None or len(bridge.channels) != 2:
        _error(session, action, "Transfer invalid")
        pbx.blind_transfer(ch, context, exten)
        return
    _ack(session, action, "Transfer succeeded")
    pbx.blind_transfer(ch, context, exten)


async def atxfer(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    name = _h(action, "Channel")
    exten = _h(action, "Exten")
    context = _h(action, "Context")
    if not name:
        _error(session, action, "No channel specified")
        return
    if not exten:
        _error(session, action, "No extension specified")
        return
    ch = pbx.find(name)
    if ch is None:
        _error(session, action, "Channel specified does not exist")
        return
    _ack(session, action, "Atxfer successfully queued")
    pbx.atxfer(ch, context, exten)


async def cancel_atxfer(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    name = _h(action, "Channel")
    if not name:
        _error(session, action, "No channel specified")
        return
    ch = pbx.find(name)
    if ch is None:
        _error(session, action, "Channel specified does not exist")
        return
    _ack(session, action, "CancelAtxfer successfully queued")
    pbx.cancel_atxfer(ch)


async def bridge(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    a_name = _h(action, "Channel1")
    b_name = _h(action, "Channel2")
    if not a_name or not b_name:
        _error(session, action, "Missing channel parameter in request")
        return
    a = pbx.find_prefix(a_name)
    if a is None:
        _error(session, action, f"Channel1 does not exist: {a_name}")
        return
    b = pbx.find_prefix(b_name)
    if b is None:
        _error(session, action, f"Channel2 does not exist: {b_name}")
        return
    for label, ch in (("Channel1", a), ("Channel2", b)):
        if pbx.in_transfer_bridge(ch):
            _error(session, action, f"Unable to add {label} to bridge: {ch.name}")
            pbx.bridge_action_refused(ch)
            return
    if a is b or pbx.bridge_shared(a, b):
        _error(session, action, f"Unable to add Channel2 to bridge: {b.name}")
        if a is not b:
            pbx.bridge_action_teardown(a, b)
        return
    _ack(session, action, "Channels have been bridged")
    pbx.bridge_action(a, b)


async def park(session: AmiSession, action: AmiAction) -> None:
    name = _h(action, "Channel")
    if not name:
        _error(session, action, "Channel not specified")
        return
    if session.sim.pbx.find(name) is None:
        _error(session, action, f"Channel does not exist: {name}")
        return
    _error(session, action, "Park action failed")


async def queue_add(session: AmiSession, action: AmiAction) -> None:
    if not _h(action, "Queue"):
        _error(session, action, "'Queue' not specified.")
        return
    if not _h(action, "Interface"):
        _error(session, action, "'Interface' not specified.")
        return
    _error(session, action, "Unable to add interface to queue: No such queue")


async def queue_pause(session: AmiSession, action: AmiAction) -> None:
    if not _h(action, "Interface") or not _h(action, "Paused"):
        _error(session, action, "Need 'Interface' and 'Paused' parameters.")
        return
    _error(session, action, "Interface not found")


# ------------------------------------------------------------ MixMonitor


async def mixmonitor(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    name = _h(action, "Channel")
    if not name:
        _error(session, action, "No channel specified")
        return
    ch = pbx.find(name)
    if ch is None:
        _error(session, action, "No such channel")
        return
    file = _h(action, "File")
    options = _h(action, "Options")
    # The reply carries the MixMonitorID only when an i(VAR) option names a
    # variable to store it in.
    rec_id = pbx.next_mixmonitor_id()
    extra = [("MixMonitorID", rec_id)] if re.search(r"i\(([^)]*)\)", options) else []
    session.reply(AmiResponse.build("Success", action.action_id or None, extra))
    pbx.mixmonitor_start(ch, file, options, rec_id=rec_id)


async def mixmonitor_mute(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    name = _h(action, "Channel")
    state = _h(action, "State")
    direction = _h(action, "Direction")
    if not direction:
        _error(session, action, "No direction specified. Must be read, write or both")
        return
    if direction.lower() not in ("read", "write", "both"):
        _error(session, action, "Invalid direction specified. Must be read, write or both")
        return
    if not name:
        _error(session, action, "No channel specified")
        return
    if not state:
        _error(session, action, "No state specified")
        return
    ch = pbx.find(name)
    if ch is None:
        _error(session, action, "No such channel")
        return
    mixmonitor_id = _h(action, "MixMonitorID") or None
    if not [r for r in ch.mixmonitors if mixmonitor_id in (None, r.id)]:
        _error(session, action, "Cannot set mute flag")
        return
    session.reply(AmiResponse.build("Success", action.action_id or None))
    pbx.mixmonitor_mute(ch, direction, _true(state), mixmonitor_id)


async def stop_mixmonitor(session: AmiSession, action: AmiAction) -> None:
    pbx = session.sim.pbx
    name = _h(action, "Channel")
    if not name:
        _error(session, action, "No channel specified")
        return
    ch = pbx.find(name)
    if ch is None:
        _error(session, action, "No such channel")
        return
    mixmonitor_id = _h(action, "MixMonitorID") or None
    if not [r for r in ch.mixmonitors if mixmonitor_id in (None, r.id)]:
        _error(session, action, "Could not stop monitoring channel")
        return
    session.reply(AmiResponse.build("Success", action.action_id or None))
    pbx.mixmonitor_stop(ch, mixmonitor_id)


def _true(text: str) -> bool:
    return text.strip().lower() in ("yes", "true", "y", "t", "1", "on")


def _spec(name: str, handler: Handler, *classes: str) -> tuple[str, ActionSpec]:
    return name.lower(), ActionSpec(name, handler, frozenset(classes))


# Write classes from the ast_manager_register_xml(_core) calls of Asterisk 22.
ACTIONS: dict[str, ActionSpec] = dict(
    [
        _spec("Ping", ping),
        _spec("Events", events),
        _spec("Filter", filter_action, "system"),
        _spec("CoreSettings", core_settings, "system", "reporting"),
        _spec("CoreStatus", core_status, "system", "reporting"),
        _spec("Command", command, "command"),
        _spec("CoreShowChannels", core_show_channels, "system", "reporting"),
        _spec("CoreShowChannelMap", core_show_channel_map, "system", "reporting"),
        _spec("Status", status, "system", "call", "reporting"),
        _spec("BridgeList", bridge_list),
        _spec("BridgeInfo", bridge_info),
        _spec("Getvar", getvar, "call", "reporting"),
        _spec("Setvar", setvar, "call"),
        _spec("Originate", originate, "originate"),
        _spec("Redirect", redirect, "call"),
        _spec("Hangup", hangup, "system", "call"),
        _spec("BlindTransfer", blind_transfer, "call"),
        _spec("Atxfer", atxfer, "call"),
        _spec("CancelAtxfer", cancel_atxfer, "call"),
        _spec("Bridge", bridge, "call"),
        _spec("Park", park, "call"),
        _spec("QueueAdd", queue_add, "agent"),
        _spec("QueuePause", queue_pause, "agent"),
        _spec("MixMonitor", mixmonitor, "system"),
        _spec("MixMonitorMute", mixmonitor_mute, "system", "call"),
        _spec("StopMixMonitor", stop_mixmonitor, "system", "call"),
    ]
)
