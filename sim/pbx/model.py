"""The simulated PBX's state: channels, bridges, AMI users, and the header
blocks Asterisk 22 writes for them.

Header names and their order come from the recorded transcripts in
``tests/fixtures/ami/`` (Asterisk 22.10.1): every channel event starts with the
same fourteen-header snapshot (``Channel`` ... ``Linkedid``), optionally
prefixed (``Dest``, ``LocalOne``, ``Transferer`` ...), and every bridge event
with the seven-header bridge snapshot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.pbx.recording import WavRecorder

__all__ = [
    "ALL_CLASSES",
    "CAUSE_TEXT",
    "STATE_DESC",
    "AmiUser",
    "Bridge",
    "MixMonitorRec",
    "SimChannel",
    "SpySession",
    "bridge_headers",
    "cause_text",
    "channel_headers",
]

Header = tuple[str, str]

# Event/permission classes of manager.c's ``perms[]`` table (without "all"/"none").
ALL_CLASSES: frozenset[str] = frozenset(
    {
        "system",
        "call",
        "log",
        "verbose",
        "command",
        "agent",
        "user",
        "config",
        "dtmf",
        "reporting",
        "cdr",
        "dialplan",
        "originate",
        "agi",
        "cc",
        "aoc",
        "test",
        "security",
        "message",
    }
)

STATE_DESC: dict[int, str] = {
    0: "Down",
    1: "Rsrvd",
    2: "OffHook",
    3: "Dialing",
    4: "Ring",
    5: "Ringing",
    6: "Up",
    7: "Busy",
    8: "Dialing Offhook",
    9: "Pre-ring",
}

# main/channel.c causes[] (the ones a contact center meets).
CAUSE_TEXT: dict[int, str] = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    26: "Answered elsewhere",
    27: "Destination out of order",
    28: "Invalid number format",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    44: "Requested channel not available",
    66: "Channel not implemented",
    127: "Interworking, unspecified",
}


def cause_text(cause: int) -> str:
    return CAUSE_TEXT.get(cause, "Unknown")


@dataclass(frozen=True, slots=True)
class AmiUser:
    """A ``manager.conf`` user: the secret and the read/write classes."""

    secret: str
    read: frozenset[str] = ALL_CLASSES
    write: frozenset[str] = ALL_CLASSES

    @classmethod
    def with_classes(cls, secret: str, read: Iterable[str], write: Iterable[str]) -> AmiUser:
        return cls(secret, frozenset(read), frozenset(write))


@dataclass(eq=False)
class Bridge:
    uniqueid: str
    channels: list[SimChannel] = field(default_factory=list)
    bridge_type: str = "basic"
    technology: str = "simple_bridge"
    creator: str = "<unknown>"
    name: str = "<unknown>"
    video_source_mode: str = "none"
    destroyed: bool = False


@dataclass(eq=False)
class MixMonitorRec:
    id: str
    path: str  # MIXMONITOR_FILENAME as reported
    muted_read: bool = False
    muted_write: bool = False
    started: float = field(default_factory=time.monotonic)
    writer: WavRecorder | None = None  # the file being written (sim/pbx/recording.py)
    task: asyncio.Task[None] | None = None  # its writing timer


@dataclass(eq=False)
class SimChannel:
    """A live channel. The public, read-only view is ``name``, ``uniqueid``,
    ``linkedid``, ``state`` ("Up", "Ring" ...), ``context``, ``exten``,
    ``priority``, ``caller_num``, ``caller_name``, ``connected_num``,
    ``connected_name``, ``bridge_id``, ``application``, ``variables``."""

    name: str
    uniqueid: str
    linkedid: str
    tech: str
    state_code: int = 0
    caller_num: str | None = None
    caller_name: str | None = None
    connected_num: str | None = None
    connected_name: str | None = None
    language: str = "en"
    accountcode: str = ""
    context: str = "default"
    exten: str = "s"
    priority: int = 1
    application: str = ""
    app_data: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    bridge: Bridge | None = None
    hangup_cause: int = 0
    dnid: str = ""
    created: float = field(default_factory=time.monotonic)
    # -- engine internals (not part of the public view) ---------------------
    device: str | None = None  # "1001" for PJSIP/1001-..., "trunk" for the trunk
    peer: SimChannel | None = None  # the other half of a Local channel
    is_local_one: bool = False
    has_pbx: bool = False
    hungup: bool = False
    hangup_requested: bool = False  # a soft hangup or a queued hangup frame
    softhangup_emitted: bool = False
    async_goto: tuple[str, str, int] | None = None
    # context, exten, priority of the last Newexten: Asterisk publishes one
    # only when they change (not when only the application does)
    shown_cep: tuple[str, str, int] | None = None
    after_goto: tuple[str, str, int] | None = None  # Bridge action's after-bridge goto
    moh_class: str | None = None
    on_hold: bool = False
    mixmonitors: list[MixMonitorRec] = field(default_factory=list)
    dtmf_queue: list[str] = field(default_factory=list)
    # caller id from the other Local half, applied (and its NewCallerid
    # published) only when this half hangs up, as Asterisk does in transfers
    late_callerid: tuple[str | None, str | None] | None = None
    can_transfer: bool = False  # Dial option t (callee) / T (caller): DTMF transfer features
    kicked: bool = False  # pulled out of its bridge (transfer, dissolve, Bridge action)
    yanked: bool = False  # taken over by the Bridge action (ast_channel_yank)
    leaving: bool = False  # leaving its bridge on purpose: do not dissolve on it
    spying: bool = False  # runs ChanSpy (AST_FLAG_SPYING: nobody may spy on it)
    answer_event: asyncio.Event = field(default_factory=asyncio.Event)
    _waiter: asyncio.Future[None] | None = field(default=None, repr=False)
    task: asyncio.Task[None] | None = None

    @property
    def state(self) -> str:
        return STATE_DESC.get(self.state_code, "Unknown")

    @property
    def bridge_id(self) -> str:
        return self.bridge.uniqueid if self.bridge is not None else ""

    @property
    def interrupted(self) -> bool:
        """An application must stop: hangup requested, redirected, or pulled
        into/out of a bridge."""
        return self.hangup_requested or self.async_goto is not None or self.kicked or self.yanked

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float | None) -> bool:
        """Sleep up to ``timeout`` seconds (forever if None); return True if
        interrupted (hangup, redirect, bridge change) instead. Wakes are
        delivered in the order ``wake()`` was called."""
        if self.interrupted:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = None
        if timeout is not None:
            timer = loop.call_later(max(timeout, 0.0), _release, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None
        return self.interrupted

    def __repr__(self) -> str:
        return f"<SimChannel {self.name} {self.uniqueid} {self.state}>"


@dataclass(eq=False)
class SpySession:
    """A ChanSpy() in progress: ``spyer`` (running ChanSpy) listens to
    ``spyee``. ``mode``: "listen", "whisper" (options w or W) or "barge" (B);
    ``options``: the application's option letters as given."""

    spyer: SimChannel
    spyee: SimChannel
    mode: str
    options: str


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _cid(value: str | None) -> str:
    return "<unknown>" if value is None else value


def channel_headers(ch: SimChannel, prefix: str = "") -> list[Header]:
    """The channel snapshot block, in Asterisk's order."""
    p = prefix
    return [
        (f"{p}Channel", ch.name),
        (f"{p}ChannelState", str(ch.state_code)),
        (f"{p}ChannelStateDesc", ch.state),
        (f"{p}CallerIDNum", _cid(ch.caller_num)),
        (f"{p}CallerIDName", _cid(ch.caller_name)),
        (f"{p}ConnectedLineNum", _cid(ch.connected_num)),
        (f"{p}ConnectedLineName", _cid(ch.connected_name)),
        (f"{p}Language", ch.language),
        (f"{p}AccountCode", ch.accountcode),
        (f"{p}Context", ch.context),
        (f"{p}Exten", ch.exten),
        (f"{p}Priority", str(ch.priority)),
        (f"{p}Uniqueid", ch.uniqueid),
        (f"{p}Linkedid", ch.linkedid),
    ]


def bridge_headers(bridge: Bridge, prefix: str = "") -> list[Header]:
    p = prefix
    return [
        (f"{p}BridgeUniqueid", bridge.uniqueid),
        (f"{p}BridgeType", bridge.bridge_type),
        (f"{p}BridgeTechnology", bridge.technology),
        (f"{p}BridgeCreator", bridge.creator),
        (f"{p}BridgeName", bridge.name),
        (f"{p}BridgeNumChannels", str(len(bridge.channels))),
        (f"{p}BridgeVideoSourceMode", bridge.video_source_mode),
    ]
