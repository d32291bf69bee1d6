"""Calls as frozen values, and the domain events the call tracker emits.

Everything here is immutable: the tracker keeps its own mutable per-channel and
per-call state and builds these snapshots only when it emits an event or is
asked (``CallTracker.get``, ``calls``, ``channel``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, Union

__all__ = [
    "IVR_SESSION_VARIABLE",
    "QUEUE_VARIABLE",
    "UNKNOWN_PARTY",
    "WATCHED_VARIABLES",
    "Call",
    "CallAnswered",
    "CallBridged",
    "CallEnded",
    "CallEvent",
    "CallHeld",
    "CallRinging",
    "CallStarted",
    "CallState",
    "CallTransferred",
    "CallUnbridged",
    "CallUnheld",
    "CallUpdated",
    "ChannelInfo",
    "Party",
    "RecordingMuted",
    "RecordingStarted",
    "RecordingStopped",
    "TransferKind",
]


class CallState(StrEnum):
    DIALING = "dialing"
    RINGING = "ringing"
    UP = "up"
    HELD = "held"
    TRANSFERRED = "transferred"  # transient: only seen in CallTransferred.call
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Party:
    """A caller-ID. Asterisk's ``<unknown>`` (and an empty value) become ``None``."""

    number: str | None
    name: str | None


UNKNOWN_PARTY = Party(None, None)

# A transfer to a queue (or an IVR flow that queued the caller) leaves the
# queue id in this variable on the customer's channel; voice routing reads it
# (and clears it) when the caller reaches the holding context.
QUEUE_VARIABLE: Final = "CALLWRIGHT_QUEUE"

# An IVR flow over FastAGI that queued the caller leaves its session id here
# (ivr.fastagi); known empty, voice routing need not look for a session.
IVR_SESSION_VARIABLE: Final = "CALLWRIGHT_IVR_SESSION"

# The channel variables the tracker follows through VarSet events (exact names:
# Asterisk's channel variable names are case-sensitive). Every other VarSet
# costs a name check and nothing more.
WATCHED_VARIABLES: Final[tuple[str, ...]] = (QUEUE_VARIABLE, IVR_SESSION_VARIABLE)


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    name: str  # "PJSIP/1001-0000000a", "Local/agent1@agents-00000005;1"
    uniqueid: str
    linkedid: str  # as last reported by Asterisk (it changes when bridged with an older call)
    state: str  # Asterisk's ChannelStateDesc: "Down", "Ring", "Ringing", "Up", ...
    caller: Party
    connected: Party
    context: str | None
    exten: str | None
    bridge_id: str | None
    on_hold: bool
    created_at: float
    device: str | None  # "PJSIP/1001", "Local/agent1@agents"
    # One (name, value) pair per name in WATCHED_VARIABLES: the value the
    # channel has now ("" when known to be empty or unset), or None when it is
    # unknown (the tracker may have missed a VarSet: a channel learned through
    # a resync, say). Read it through ``variable()``.
    variables: tuple[tuple[str, str | None], ...] = ()

    def variable(self, name: str) -> str | None:
        """The channel's current value of a watched variable: "" if known to be
        empty, None if unknown (or ``name`` is not in WATCHED_VARIABLES)."""
        for key, value in self.variables:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Call:
    id: str  # the linkedid the call was first seen with; stable for its whole life
    state: CallState
    channels: tuple[ChannelInfo, ...]  # live channels, in creation order; empty once ended
    caller: Party  # the caller channel's caller-ID
    callee: Party  # who the caller channel talks to (bridge peer, dialed party, connected line)
    started_at: float
    ringing_at: float | None
    answered_at: float | None
    ended_at: float | None
    hangup_cause: int | None  # Q.850 cause, e.g. 16
    hangup_cause_text: str | None  # "Normal Clearing", or "lost during resync"
    bridged: bool
    held: bool
    recording: bool  # a MixMonitor runs on one of its channels
    transferred_to: str | None  # blind: the extension; attended: the transfer target channel
    queue: str | None  # the last queue a Queue*/Agent* event named
    context: str | None  # where the caller channel is (or last was) in the dialplan
    exten: str | None

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED


TransferKind = Literal["blind", "attended"]


# -- domain events ----------------------------------------------------------
# Every event carries the call as it is right after the change, and the time
# (the ``now`` given to ``CallTracker.feed``).


@dataclass(frozen=True, slots=True)
class _Event:
    call: Call
    at: float


@dataclass(frozen=True, slots=True)
class CallStarted(_Event):
    pass


@dataclass(frozen=True, slots=True)
class CallRinging(_Event):
    pass


@dataclass(frozen=True, slots=True)
class CallAnswered(_Event):
    pass


@dataclass(frozen=True, slots=True)
class CallBridged(_Event):
    bridge_id: str


@dataclass(frozen=True, slots=True)
class CallUnbridged(_Event):
    pass


@dataclass(frozen=True, slots=True)
class CallHeld(_Event):
    pass


@dataclass(frozen=True, slots=True)
class CallUnheld(_Event):
    pass


@dataclass(frozen=True, slots=True)
class CallTransferred(_Event):
    kind: TransferKind
    target: str | None


@dataclass(frozen=True, slots=True)
class CallUpdated(_Event):
    """Something worth showing changed: ``changed`` names it ("caller", "callee",
    "context", "queue", "channels")."""

    changed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordingStarted(_Event):
    channel: str
    mixmonitor_id: str | None
    file: str | None  # MIXMONITOR_FILENAME as Asterisk set it


@dataclass(frozen=True, slots=True)
class RecordingStopped(_Event):
    channel: str
    mixmonitor_id: str | None
    file: str | None


@dataclass(frozen=True, slots=True)
class RecordingMuted(_Event):
    channel: str
    direction: str  # "read", "write" or "both"
    muted: bool


@dataclass(frozen=True, slots=True)
class CallEnded(_Event):
    pass


CallEvent = Union[  # noqa: UP007 (a runtime alias usable in isinstance and match)
    CallStarted,
    CallRinging,
    CallAnswered,
    CallBridged,
    CallUnbridged,
    CallHeld,
    CallUnheld,
    CallTransferred,
    CallUpdated,
    RecordingStarted,
    RecordingStopped,
    RecordingMuted,
    CallEnded,
]
