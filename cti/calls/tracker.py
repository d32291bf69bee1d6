"""A sans-I/O call tracker: AMI events in, calls and domain events out.

``CallTracker.feed(event, now)`` folds one ``AmiEvent`` into the model and
returns the domain events it caused (usually none). It never does I/O and never
reads the clock: ``now`` is whatever the caller says it is. Internally it keeps
mutable per-channel and per-call records and builds frozen ``Call`` snapshots
only when it emits an event or is asked.

Shape (after h11): ``HANDLERS`` maps each AMI event name the tracker uses to a
handler, one dict lookup decides that an event is ignored; the call state
machine is the single ``TRANSITIONS`` table, ``state -> trigger -> state``. A
trigger missing from a state's row changes nothing (a consult leg ringing while
the call is up does not make it "ringing" again); ``ENDED`` has an empty row,
so an ended call never changes again.

Rules, as read from the Asterisk 22 recordings in tests/fixtures/ami/:

* Grouping. Channels are keyed by Uniqueid and grouped into calls by Linkedid
  (a dialed channel inherits its caller's). A call's ``id`` is the linkedid it
  was first seen with (``<linkedid>#2`` ... if an ended call already used it).
  Asterisk re-links a channel to the *oldest* linkedid in a bridge it joins
  (bridge_basic push -> ast_bridge_channel_update_linkedids); when an event
  shows a channel's Linkedid changed, the channel moves to the call that owns
  the new linkedid. A call whose channels all moved away ends with
  ``hangup_cause_text`` "merged into <id>".
* Local channels. ``Local/x@ctx-0000001b;1`` and ``;2`` always belong to one
  call: a ``;2`` half joins its ``;1`` half's call whatever its Linkedid, and
  a half that moves drags its sibling along. LocalOptimizationBegin marks both
  halves as on their way out: their BridgeLeave does not announce
  CallUnbridged (the BridgeEnter with SwapUniqueid that follows is reported as
  CallUpdated, changed "callee"), and their hangup cause is not taken as the
  call's. They disappear with their Hangup events like any channel.
* The caller channel (it gives ``caller``, ``context`` and ``exten``) is the
  first channel of the call, except that a Local ``;2`` half takes over from
  its ``;1`` sibling: for ``Originate Local/100@inbound`` the ``;2`` half runs
  inbound,100 and is the inbound caller. It stays the caller channel after it
  hangs up (the values are kept). ``callee`` is the party the caller channel
  is bridged with (seen through Local pairs), else the last party it was
  bridged with or dialed, else its connected line.
* States: a call starts DIALING (its first channel is Down or Ring); DialBegin
  or a channel going Ringing makes it RINGING; any channel going Up makes it
  UP (answered). HELD: a Hold event on one of its channels, or
  MusicOnHoldStart on a channel of a call that has already been bridged to
  another party (Callwright's CTI hold); MusicOnHoldStart while the caller
  waits in a holding context before ever being bridged is not a hold. Back to
  UP when no channel is held any more (Unhold, MusicOnHoldStop, hangup).
* Transfers. A successful BlindTransfer / AttendedTransfer moves the call
  holding the transferee (else the transferer) through the transient
  TRANSFERRED state: CallTransferred carries that snapshot, then the call is
  UP again. In Asterisk the transferee stays in the call: after a blind
  transfer it leaves the bridge, runs the target extension and is bridged with
  the new party (CallUnbridged, CallRinging is not repeated, CallBridged); after
  an attended transfer the target is moved into the transferee's bridge
  (CallBridged). Asterisk itself hangs up the transferer's leg right after
  the transfer event (06-transfers.txt), so a call left with only the
  transferer's side ends through the ordinary last-channel rule; the tracker
  never ends a call on a transfer event alone. The transferer's own Hold (an
  Atxfer holds it) is over with the transfer. ``transferred_to`` is the
  extension for a blind transfer and the TransferTargetChannel for an
  attended one; Asterisk 22 leaves the TransferTarget* headers out of some
  AttendedTransfer events (a race, about one in four in
  tests/fixtures/ami-real/), and then it is the channel the merge put into
  the DestBridgeUniqueid bridge beside the transferee.
* ENDED when the call's last channel hangs up. ``hangup_cause`` is the
  non-zero Cause of the channel that left the call's two-party bridge first
  (the one whose hangup ended the conversation: real Asterisk 22 often reports
  the far leg's consequential Hangup, Cause 16, before the initiator's own,
  tests/fixtures/ami-real/07); failing that, the first non-zero Cause among
  its Hangup events since the call was last bridged (hangups of transferers,
  consult legs and optimised Local halves while the call goes on are
  forgotten when it is next bridged), else the last Cause.
  A channel that hangs up while recording reports RecordingStopped first.
* Robustness. Unknown event names are counted in ``stats.ignored``; events for
  channels that are not live (never seen, or already hung up, including late
  events for an ended call) in ``stats.orphans``; events missing the headers
  the tracker needs (Uniqueid, Channel, Linkedid, BridgeUniqueid...) or with
  an unparsable Cause in ``stats.malformed``. None of them raises or touches
  another call. A Newchannel (or Rename) giving a live channel's name to another
  Uniqueid drops the older channel (its call ends if emptied): Asterisk never
  does it, and every live channel must stay findable by name.
  ``stats.internal_errors`` counts bugs caught by the last-resort guard in
  ``feed`` and ``resync`` (it should stay 0).
* Watched channel variables (``WATCHED_VARIABLES``, CALLWRIGHT_QUEUE). A
  VarSet for one of them gives the channel's value at once (Asterisk sends
  the name as set, with the inheritance prefix ``_``/``__`` if any: both
  count; "" means cleared), with no CallEvent: nobody is told, the next
  snapshot shows it (``ChannelInfo.variable``). A VarSet for any other
  variable is a name check and nothing more (MIXMONITOR_FILENAME aside). A
  channel that was never set one is known to have it empty only if the
  tracker saw its Newchannel *and* this link delivers VarSet events at all
  (one arrived since the tracker was made or last resynced: an AMI user
  without the ``dialplan`` read class gets none, and then nothing is known).
  Everywhere else the value is unknown (None) until a VarSet for it arrives:
  channels learned or kept through a resync (events may have been missed
  while the link was down), a renamed channel (a masquerade merges variables
  silently), and a dialed channel whose caller's values are unknown or were
  set inheritable (``_X``/``__X``: Asterisk copies them into the channel it
  dials). ``note_variable`` records a value Callwright itself is setting.
  "Seen from its Newchannel" is about the channel, not its name or Uniqueid:
  a Newchannel for a Uniqueid the tracker does not hold starts a new channel
  with nothing set, even if a hung-up or resynced-away channel had that name
  or Uniqueid (every VarSet for it comes after that Newchannel on this link,
  so none can have been missed). A VarSet for a channel that is not live is
  an orphan: it sets nothing, for now or for a later channel of that
  Uniqueid, but it does show that the link delivers VarSet events.
* ``resync(snapshot, now)`` takes the CoreShowChannel events of a
  CoreShowChannels list and makes the model match them: channels missing from
  it are dropped and a call left without channels ends (cause None,
  "lost during resync"); new channels are added (new calls get one
  CallStarted with state from ChannelStateDesc, bridges from BridgeId and
  ``created_at`` from Duration); survivors are updated and keep their call ids.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cti.ami.messages import AmiEvent, Headers
from cti.calls.model import (
    UNKNOWN_PARTY,
    WATCHED_VARIABLES,
    Call,
    CallAnswered,
    CallBridged,
    CallEnded,
    CallEvent,
    CallHeld,
    CallRinging,
    CallStarted,
    CallState,
    CallTransferred,
    CallUnbridged,
    CallUnheld,
    CallUpdated,
    ChannelInfo,
    Party,
    RecordingMuted,
    RecordingStarted,
    RecordingStopped,
    TransferKind,
)

__all__ = ["HANDLERS", "MAX_ENDED", "TRANSITIONS", "CallTracker", "TrackerStats", "Trigger"]

logger = logging.getLogger(__name__)

MAX_ENDED = 1000  # ended calls kept for get()
RESYNC_LOST = "lost during resync"


class Trigger(enum.Enum):
    RING = "ring"  # DialBegin, or a channel of the call reports Ringing
    ANSWER = "answer"  # a channel of the call reports Up
    HOLD = "hold"  # a channel of the call is now held
    UNHOLD = "unhold"  # no channel of the call is held any more
    TRANSFER = "transfer"  # BlindTransfer / AttendedTransfer with Result: Success
    SETTLE = "settle"  # the transient TRANSFERRED state resolves
    END = "end"  # the call's last channel is gone


_S = CallState
_T = Trigger

TRANSITIONS: dict[CallState, dict[Trigger, CallState]] = {
    _S.DIALING: {_T.RING: _S.RINGING, _T.ANSWER: _S.UP, _T.END: _S.ENDED},
    _S.RINGING: {_T.ANSWER: _S.UP, _T.END: _S.ENDED},
    _S.UP: {_T.HOLD: _S.HELD, _T.TRANSFER: _S.TRANSFERRED, _T.END: _S.ENDED},
    _S.HELD: {_T.UNHOLD: _S.UP, _T.TRANSFER: _S.TRANSFERRED, _T.END: _S.ENDED},
    _S.TRANSFERRED: {_T.SETTLE: _S.UP, _T.END: _S.ENDED},
    _S.ENDED: {},
}

# The event a transition announces. TRANSFER's CallTransferred needs the
# transfer's details and is built by its handler; SETTLE announces nothing.
_ANNOUNCE: dict[Trigger, Callable[[Call, float], CallEvent] | None] = {
    _T.RING: CallRinging,
    _T.ANSWER: CallAnswered,
    _T.HOLD: CallHeld,
    _T.UNHOLD: CallUnheld,
    _T.TRANSFER: None,
    _T.SETTLE: None,
    _T.END: CallEnded,
}

_STATE_TRIGGERS: dict[str, Trigger] = {"Ringing": _T.RING, "Up": _T.ANSWER}

# AMI event name -> CallTracker method. Everything else is ignored.
HANDLERS: dict[str, str] = {
    "Newchannel": "_on_newchannel",
    "Newstate": "_on_channel",
    "NewCallerid": "_on_channel",
    "NewConnectedLine": "_on_channel",
    "Newexten": "_on_channel",
    "Hangup": "_on_hangup",
    "DialBegin": "_on_dial_begin",
    "BridgeEnter": "_on_bridge_enter",
    "BridgeLeave": "_on_bridge_leave",
    "BridgeDestroy": "_on_bridge_destroy",
    "Hold": "_on_hold",
    "Unhold": "_on_unhold",
    "MusicOnHoldStart": "_on_moh_start",
    "MusicOnHoldStop": "_on_moh_stop",
    "BlindTransfer": "_on_blind_transfer",
    "AttendedTransfer": "_on_attended_transfer",
    "LocalBridge": "_on_local_bridge",
    "LocalOptimizationBegin": "_on_local_optimization_begin",
    "LocalOptimizationEnd": "_on_local_optimization_end",
    "VarSet": "_on_varset",
    "MixMonitorStart": "_on_mixmonitor_start",
    "MixMonitorStop": "_on_mixmonitor_stop",
    "MixMonitorMute": "_on_mixmonitor_mute",
    "QueueCallerJoin": "_on_queue",
    "QueueCallerLeave": "_on_queue",
    "QueueCallerAbandon": "_on_queue",
    "AgentCalled": "_on_queue",
    "AgentConnect": "_on_queue",
    "AgentComplete": "_on_queue",
    "AgentRingNoAnswer": "_on_queue",
    "AgentDump": "_on_queue",
    "Rename": "_on_rename",
}

# Header names the tracker reads, to repair a peer that sends them in another case.
_KNOWN_HEADERS = (
    "Event Channel Uniqueid Linkedid ChannelStateDesc CallerIDNum CallerIDName "
    "ConnectedLineNum ConnectedLineName Context Exten Cause Cause-txt DestUniqueid "
    "BridgeUniqueid SwapUniqueid Result TransfererUniqueid TransfereeUniqueid "
    "OrigTransfererUniqueid SecondTransfererUniqueid TransferTargetUniqueid "
    "TransferTargetChannel DestApp DestType DestBridgeUniqueid Extension LocalOneUniqueid "
    "LocalTwoUniqueid Variable "
    "Value MixMonitorID Direction State Queue Newname BridgeId Duration"
).split()
_CANONICAL = {name.lower(): name for name in _KNOWN_HEADERS}

_MIXMONITOR_FILENAME = "MIXMONITOR_FILENAME"

# VarSet's Variable header (the name as it was set, inheritance prefix and
# all) -> the watched variable it sets.
_WATCHED_NAMES: dict[str, str] = {
    prefix + name: name for name in WATCHED_VARIABLES for prefix in ("", "_", "__")
}

# What a channel's watched variables that no VarSet named are:
_VARS_UNKNOWN = 0  # unknown (events may have been missed)
_VARS_PENDING = 1  # empty, once this link is seen to deliver VarSet events
_VARS_EMPTY = 2  # empty

_ALL_UNKNOWN: tuple[tuple[str, str | None], ...] = tuple((n, None) for n in WATCHED_VARIABLES)
_ALL_EMPTY: tuple[tuple[str, str | None], ...] = tuple((n, "") for n in WATCHED_VARIABLES)

Handler = Callable[[Headers, float], list[CallEvent]]


@dataclass(slots=True)
class TrackerStats:
    events: int = 0  # events fed
    ignored: int = 0  # event names the tracker does not use
    orphans: int = 0  # used events about channels that are not live
    malformed: int = 0  # used events missing a needed header, or with a bad value
    internal_errors: int = 0  # exceptions caught by feed's guard (a bug if not 0)


def _hdict(headers: Headers) -> dict[str, str]:
    d = dict(headers)
    if "Event" in d:
        return d
    # Not Asterisk's spelling: match the names we need case-insensitively.
    return {_CANONICAL.get(key.lower(), key): value for key, value in headers}


def _norm(value: str | None) -> str | None:
    if not value or value == "<unknown>":
        return None
    return value


def _device(name: str) -> str | None:
    """ "PJSIP/1001-0000000a" -> "PJSIP/1001"; "Local/a@b-0000001b;1" -> "Local/a@b"."""
    base = name[:-2] if name.startswith("Local/") and name[-2:] in (";1", ";2") else name
    slash = base.find("/")
    if slash < 0:
        return None
    dash = base.rfind("-")
    return base[:dash] if dash > slash else base


def _varset_variable(headers: Headers) -> str | None:
    """A VarSet's Variable header. Asterisk sends it second to last (before
    Value): look there first, then anywhere, in any case."""
    if len(headers) >= 2:
        key, value = headers[-2]
        if key == "Variable":
            return value
    for key, value in headers:
        if key == "Variable" or key.lower() == "variable":
            return value
    return None


def _duration(value: str | None) -> float:
    """CoreShowChannel's Duration "HH:MM:SS" in seconds (0 if unreadable)."""
    if not value:
        return 0.0
    total = 0
    for part in value.split(":"):
        if not part.isdigit():
            return 0.0
        total = total * 60 + int(part)
    return float(total)


def _variables(ch: _Chan) -> tuple[tuple[str, str | None], ...]:
    """ChannelInfo.variables for a channel (shared tuples when no VarSet named one)."""
    values = ch.vars
    if not values:
        return _ALL_EMPTY if ch.vars_rest == _VARS_EMPTY else _ALL_UNKNOWN
    rest = "" if ch.vars_rest == _VARS_EMPTY else None
    return tuple((name, values.get(name, rest)) for name in WATCHED_VARIABLES)


class _Chan:
    """A live channel (mutable, internal)."""

    __slots__ = (
        "bridge_id",
        "call",
        "cid_name",
        "cid_num",
        "cl_name",
        "cl_num",
        "context",
        "created_at",
        "device",
        "exten",
        "hold",
        "info",
        "linkedid",
        "mixmon_file",
        "moh",
        "name",
        "optimizing",
        "recordings",
        "state",
        "uid",
        "vars",
        "vars_inherit",
        "vars_rest",
    )

    def __init__(self, name: str, uid: str, linkedid: str, call: _Call, created_at: float) -> None:
        self.name = name
        self.uid = uid
        self.linkedid = linkedid  # the last Linkedid Asterisk reported for it
        self.call = call
        self.created_at = created_at
        self.device = _device(name)
        self.state = "Down"
        self.cid_num: str | None = None
        self.cid_name: str | None = None
        self.cl_num: str | None = None
        self.cl_name: str | None = None
        self.context: str | None = None
        self.exten: str | None = None
        self.bridge_id: str | None = None
        self.hold = False  # Hold event
        self.moh = False  # MusicOnHoldStart after the call was bridged
        self.optimizing = False  # LocalOptimizationBegin seen
        self.recordings = 0  # MixMonitors running
        self.mixmon_file: str | None = None
        # Watched variables: the values VarSet events (or note_variable) gave,
        # what the others are (_VARS_*), and whether one was set inheritable.
        self.vars: dict[str, str] | None = None
        self.vars_rest = _VARS_UNKNOWN
        self.vars_inherit = False
        # The last ChannelInfo built; every change to a field it shows resets it.
        self.info: ChannelInfo | None = None


class _Call:
    """A live call (mutable, internal)."""

    __slots__ = (
        "answered_at",
        "callee",
        "caller",
        "cause_first",
        "cause_first_text",
        "cause_last",
        "cause_last_text",
        "chans",
        "context",
        "ended_at",
        "exten",
        "hangup_cause",
        "hangup_cause_text",
        "id",
        "last_party",
        "leaver",
        "leaver_cause",
        "leaver_cause_text",
        "linkedids",
        "primary",
        "queue",
        "ringing_at",
        "started_at",
        "state",
        "transferred_to",
        "was_bridged",
    )

    def __init__(self, call_id: str, linkedid: str, now: float) -> None:
        self.id = call_id
        self.linkedids = [linkedid]
        self.state = CallState.DIALING
        self.chans: list[_Chan] = []
        self.primary: _Chan | None = None  # the caller channel
        self.last_party: _Chan | None = None  # last party the caller was bridged with or dialed
        self.started_at = now
        self.ringing_at: float | None = None
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.cause_first: int | None = None
        self.cause_first_text: str | None = None
        self.cause_last: int | None = None
        self.cause_last_text: str | None = None
        # The channel (Uniqueid) that left first the two-party bridge the call
        # was last in, and the cause it hung up with.
        self.leaver: str | None = None
        self.leaver_cause: int | None = None
        self.leaver_cause_text: str | None = None
        self.hangup_cause: int | None = None
        self.hangup_cause_text: str | None = None
        self.was_bridged = False
        self.transferred_to: str | None = None
        self.queue: str | None = None
        self.caller = UNKNOWN_PARTY
        self.callee = UNKNOWN_PARTY
        self.context: str | None = None
        self.exten: str | None = None


class CallTracker:
    def __init__(self) -> None:
        self.stats = TrackerStats()
        self._chans: dict[str, _Chan] = {}  # Uniqueid -> live channel
        self._by_name: dict[str, _Chan] = {}  # channel name -> live channel
        self._calls: dict[str, _Call] = {}  # call id -> live call
        self._by_linkedid: dict[str, _Call] = {}  # linkedid -> live call
        self._bridges: dict[str, list[_Chan]] = {}  # BridgeUniqueid -> members
        self._ended: dict[str, Call] = {}  # call id -> final snapshot, oldest first
        self._reused: dict[str, int] = {}  # linkedid -> last "#n" given to a call
        # A VarSet arrived since the tracker was made or last resynced: this
        # link delivers them, so a channel seen from its Newchannel on has no
        # watched variable that no VarSet named.
        self._varsets_seen = False
        self._handlers: dict[str, Handler] = {
            name: getattr(self, method) for name, method in HANDLERS.items()
        }

    # -- public API ----------------------------------------------------------

    def feed(self, event: AmiEvent, now: float) -> list[CallEvent]:
        """Fold one event in; return the domain events it caused ([] for most)."""
        stats = self.stats
        stats.events += 1
        headers = event.headers
        if headers and headers[0][0] == "Event":
            name = headers[0][1]
        else:
            name = event.name
        handler = self._handlers.get(name)
        if handler is None:
            stats.ignored += 1
            return []
        try:
            return handler(headers, now)
        except Exception:
            # A bug must not take the CTI loop down; it is counted and logged.
            stats.internal_errors += 1
            logger.exception("call tracker failed on a %s event", name)
            return []

    def calls(self) -> list[Call]:
        """The live calls, oldest first."""
        return [self._snapshot(call) for call in self._calls.values()]

    def get(self, call_id: str) -> Call | None:
        """A live call, or one of the last ``MAX_ENDED`` ended calls."""
        call = self._calls.get(call_id)
        if call is not None:
            return self._snapshot(call)
        return self._ended.get(call_id)

    def call_for_channel(self, channel_name: str) -> Call | None:
        ch = self._by_name.get(channel_name)
        return None if ch is None else self._snapshot(ch.call)

    def channel(self, channel_name: str) -> ChannelInfo | None:
        ch = self._by_name.get(channel_name)
        return None if ch is None else self._info(ch)

    def note_variable(self, uniqueid: str, name: str, value: str) -> bool:
        """Record that Callwright is setting watched variable ``name`` to
        ``value`` on a live channel (say, clearing it with a Setvar it is
        about to send), so a read before that Setvar's VarSet arrives does not
        see the old value. Announces nothing. False if the channel is not live;
        ValueError if ``name`` is not a watched variable."""
        if name not in WATCHED_VARIABLES:
            raise ValueError(
                f"{name!r} is not a watched variable (watched: {', '.join(WATCHED_VARIABLES)})"
            )
        ch = self._chans.get(uniqueid)
        if ch is None:
            return False
        self._set_var(ch, name, value)
        return True

    def resync(self, snapshot: Sequence[AmiEvent], now: float) -> list[CallEvent]:
        """Make the model match a CoreShowChannels listing (its CoreShowChannel
        events; anything else in ``snapshot`` is skipped)."""
        try:
            return self._resync(snapshot, now)
        except Exception:
            self.stats.internal_errors += 1
            logger.exception("call tracker failed to resync")
            return []

    # -- snapshots -----------------------------------------------------------

    def _info(self, ch: _Chan) -> ChannelInfo:
        info = ch.info
        if info is None:
            info = ch.info = self._build_info(ch)
        return info

    @staticmethod
    def _build_info(ch: _Chan) -> ChannelInfo:
        return ChannelInfo(
            name=ch.name,
            uniqueid=ch.uid,
            linkedid=ch.linkedid,
            state=ch.state,
            caller=Party(_norm(ch.cid_num), _norm(ch.cid_name)),
            connected=Party(_norm(ch.cl_num), _norm(ch.cl_name)),
            context=ch.context or None,
            exten=ch.exten or None,
            bridge_id=ch.bridge_id,
            on_hold=ch.hold or ch.moh,
            created_at=ch.created_at,
            device=ch.device,
            variables=_variables(ch),
        )

    def _snapshot(self, call: _Call) -> Call:
        self._refresh(call)
        chans = call.chans
        return Call(
            id=call.id,
            state=call.state,
            channels=tuple([self._info(ch) for ch in chans]),
            caller=call.caller,
            callee=call.callee,
            started_at=call.started_at,
            ringing_at=call.ringing_at,
            answered_at=call.answered_at,
            ended_at=call.ended_at,
            hangup_cause=call.hangup_cause,
            hangup_cause_text=call.hangup_cause_text,
            bridged=self._bridged(call),
            held=call.state is CallState.HELD,
            recording=any(ch.recordings for ch in chans),
            transferred_to=call.transferred_to,
            queue=call.queue,
            context=call.context,
            exten=call.exten,
        )

    def _refresh(self, call: _Call) -> None:
        """Recompute caller/callee/context from the caller channel while it lives."""
        p = call.primary
        if p is None:
            return
        call.caller = Party(_norm(p.cid_num), _norm(p.cid_name))
        call.context = p.context or None
        call.exten = p.exten or None
        peer = self._peer(p)
        if peer is not None:
            call.last_party = peer
        else:
            peer = call.last_party
        if peer is not None:
            call.callee = Party(_norm(peer.cid_num), _norm(peer.cid_name))
        else:
            call.callee = Party(_norm(p.cl_num), _norm(p.cl_name))

    def _peer(self, ch: _Chan) -> _Chan | None:
        """Who ``ch`` talks to: another member of its bridge, looking through
        Local pairs (a bridged Local half stands for what its sibling is bridged to)."""
        peer = self._other_member(ch)
        hops = 0
        while peer is not None and hops < 4:
            sibling = self._sibling(peer.name)
            if sibling is None:
                break
            far = self._other_member(sibling)
            if far is None or far is ch:
                break
            peer = far
            hops += 1
        return peer

    def _other_member(self, ch: _Chan) -> _Chan | None:
        if ch.bridge_id is None:
            return None
        for member in self._bridges.get(ch.bridge_id, ()):
            if member is not ch:
                return member
        return None

    def _bridged(self, call: _Call) -> bool:
        bridges = self._bridges
        for ch in call.chans:
            bid = ch.bridge_id
            if bid is not None and len(bridges.get(bid, ())) >= 2:
                return True
        return False

    # -- shared machinery ------------------------------------------------------

    def _fire(self, call: _Call, trigger: Trigger, now: float, out: list[CallEvent] | None) -> bool:
        """Apply ``trigger`` through TRANSITIONS; announce it into ``out``."""
        new = TRANSITIONS[call.state].get(trigger)
        if new is None:
            return False
        call.state = new
        if new is CallState.RINGING:
            if call.ringing_at is None:
                call.ringing_at = now
        elif new is CallState.UP:
            if call.answered_at is None:
                call.answered_at = now
        elif new is CallState.ENDED:
            call.ended_at = now
        announce = _ANNOUNCE[trigger]
        if announce is not None and out is not None:
            out.append(announce(self._snapshot(call), now))
        return True

    def _lookup(self, d: dict[str, str]) -> _Chan | None:
        uid = d.get("Uniqueid")
        if uid is None:
            self.stats.malformed += 1
            return None
        ch = self._chans.get(uid)
        if ch is None:
            self.stats.orphans += 1
        return ch

    def _absorb(
        self, ch: _Chan, d: dict[str, str], now: float, out: list[CallEvent]
    ) -> tuple[str, ...]:
        """Take the channel snapshot headers an event carries. Returns what
        visibly changed on the call's caller channel."""
        ch.info = None
        get = d.get
        linkedid = get("Linkedid")
        if linkedid is not None and linkedid != ch.linkedid:
            self._relink(ch, linkedid, now, out)
            # Relinking may have snapshotted the channel before the headers
            # below are taken: drop that snapshot so none keeps stale values.
            ch.info = None
        call = ch.call
        changed: tuple[str, ...] = ()
        if call.primary is ch:
            cid = (ch.cid_num, ch.cid_name)
            cl = (ch.cl_num, ch.cl_name)
            where = (ch.context, ch.exten)
            ch.cid_num = get("CallerIDNum", ch.cid_num)
            ch.cid_name = get("CallerIDName", ch.cid_name)
            ch.cl_num = get("ConnectedLineNum", ch.cl_num)
            ch.cl_name = get("ConnectedLineName", ch.cl_name)
            ch.context = get("Context", ch.context)
            ch.exten = get("Exten", ch.exten)
            if cid != (ch.cid_num, ch.cid_name):
                changed += ("caller",)
            if cl != (ch.cl_num, ch.cl_name):
                changed += ("callee",)
            if where != (ch.context, ch.exten):
                changed += ("context",)
        else:
            ch.cid_num = get("CallerIDNum", ch.cid_num)
            ch.cid_name = get("CallerIDName", ch.cid_name)
            ch.cl_num = get("ConnectedLineNum", ch.cl_num)
            ch.cl_name = get("ConnectedLineName", ch.cl_name)
            ch.context = get("Context", ch.context)
            ch.exten = get("Exten", ch.exten)
        state = get("ChannelStateDesc")
        if state is not None and state != ch.state:
            ch.state = state
            trigger = _STATE_TRIGGERS.get(state)
            if trigger is not None:
                self._fire(call, trigger, now, out)
        return changed

    def _finish(
        self, call: _Call, changed: tuple[str, ...], out: list[CallEvent], now: float
    ) -> None:
        """Announce CallUpdated for ``changed`` unless the call already has an
        event in ``out`` (its snapshot shows the change) or is gone."""
        if not changed or call.id not in self._calls:
            return
        if changed == ("callee",) and call.primary is not None:
            if call.last_party is not None or self._peer(call.primary) is not None:
                return  # the connected line only shows while there is no other party
        for event in out:
            if event.call.id == call.id:
                return
        out.append(CallUpdated(self._snapshot(call), now, changed))

    def _sibling(self, name: str) -> _Chan | None:
        """The other half of a Local channel, if live."""
        if not name.startswith("Local/"):
            return None
        tail = name[-2:]
        if tail == ";1":
            return self._by_name.get(name[:-1] + "2")
        if tail == ";2":
            return self._by_name.get(name[:-1] + "1")
        return None

    def _new_call(self, linkedid: str, now: float) -> _Call:
        call_id = linkedid
        if call_id in self._ended or call_id in self._calls:
            # An ended call already had this id: number the new one.
            n = self._reused.get(linkedid, 1)
            while call_id in self._ended or call_id in self._calls:
                n += 1
                call_id = f"{linkedid}#{n}"
            self._reused[linkedid] = n
        call = _Call(call_id, linkedid, now)
        self._calls[call_id] = call
        self._by_linkedid[linkedid] = call
        return call

    def _displace(self, name: str, keep: _Chan | None, now: float, out: list[CallEvent]) -> None:
        """Asterisk never gives two live channels one name; if a peer does, the
        newest wins and the older channel is dropped (its call ends if empty)."""
        old = self._by_name.get(name)
        if old is None or old is keep:
            return
        call = old.call
        self._remove_channel(old, now, out)
        if not call.chans:
            self._end_call(call, now, out, "")

    def _add_channel(
        self,
        uid: str,
        name: str,
        linkedid: str,
        d: dict[str, str],
        now: float,
        out: list[CallEvent],
    ) -> tuple[_Chan, bool]:
        """Create a live channel in its call (made if needed). Announces only
        what displacing a channel of the same name causes."""
        self._displace(name, None, now, out)
        sibling = self._sibling(name)
        call = sibling.call if sibling is not None else self._by_linkedid.get(linkedid)
        is_new = call is None
        if call is None:
            call = self._new_call(linkedid, now)
        elif linkedid not in self._by_linkedid:
            self._by_linkedid[linkedid] = call
            call.linkedids.append(linkedid)
        ch = _Chan(name, uid, linkedid, call, now)
        get = d.get
        ch.state = get("ChannelStateDesc") or "Down"
        ch.cid_num = get("CallerIDNum")
        ch.cid_name = get("CallerIDName")
        ch.cl_num = get("ConnectedLineNum")
        ch.cl_name = get("ConnectedLineName")
        ch.context = get("Context")
        ch.exten = get("Exten")
        self._chans[uid] = ch
        self._by_name[name] = ch
        call.chans.append(ch)
        if is_new:
            call.primary = ch
        elif sibling is not None and call.primary is sibling and name.endswith(";2"):
            call.primary = ch
        return ch, is_new

    def _relink(self, ch: _Chan, linkedid: str, now: float, out: list[CallEvent]) -> None:
        ch.linkedid = linkedid
        target = self._by_linkedid.get(linkedid)
        if target is None:
            self._by_linkedid[linkedid] = ch.call
            ch.call.linkedids.append(linkedid)
        elif target is not ch.call:
            self._move(ch, target, now, out)

    def _move(self, ch: _Chan, target: _Call, now: float, out: list[CallEvent]) -> None:
        """Move ``ch`` (and its Local sibling) into ``target``."""
        source = ch.call
        group = [ch]
        sibling = self._sibling(ch.name)
        if sibling is not None and sibling.call is source:
            group.append(sibling)
        self._refresh(source)
        for member in group:
            source.chans.remove(member)
            if source.primary is member:
                source.primary = None
            member.call = target
            target.chans.append(member)
        if any(member.state == "Up" for member in group):
            self._fire(target, _T.ANSWER, now, out)
        if not source.chans:
            self._end_call(source, now, out, f"merged into {target.id}")
            for linkedid in source.linkedids:
                if linkedid not in self._by_linkedid:
                    self._by_linkedid[linkedid] = target
                    target.linkedids.append(linkedid)
        else:
            self._eval_hold(source, now, out)

    def _eval_hold(self, call: _Call, now: float, out: list[CallEvent] | None) -> None:
        held = False
        for ch in call.chans:
            if ch.hold or ch.moh:
                held = True
                break
        self._fire(call, _T.HOLD if held else _T.UNHOLD, now, out)

    def _detach(self, ch: _Chan) -> None:
        bid = ch.bridge_id
        if bid is None:
            return
        ch.bridge_id = None
        ch.info = None
        members = self._bridges.get(bid)
        if members is not None:
            if ch in members:
                members.remove(ch)
            if not members:
                del self._bridges[bid]

    def _calls_around(self, ch: _Chan, bridge_ids: Iterable[str | None]) -> list[_Call]:
        """``ch``'s call and the calls of every member of the given bridges."""
        calls = [ch.call]
        for bid in bridge_ids:
            if bid is None:
                continue
            for member in self._bridges.get(bid, ()):
                if member.call not in calls:
                    calls.append(member.call)
        return calls

    def _announce_unbridged(
        self, before: dict[_Call, bool], now: float, out: list[CallEvent] | None
    ) -> None:
        if out is None:
            return
        for call, was in before.items():
            if was and call.id in self._calls and call.chans and not self._bridged(call):
                out.append(CallUnbridged(self._snapshot(call), now))

    def _remove_channel(
        self, ch: _Chan, now: float, out: list[CallEvent] | None, *, quiet_bridge: bool = False
    ) -> None:
        """Drop a live channel (hung up, or gone in a resync). Ends nothing."""
        call = ch.call
        self._refresh(call)
        if ch.recordings:
            ch.recordings = 0
            if out is not None:
                out.append(
                    RecordingStopped(self._snapshot(call), now, ch.name, None, ch.mixmon_file)
                )
        before: dict[_Call, bool] = {}
        if ch.bridge_id is not None:
            for other in self._calls_around(ch, (ch.bridge_id,)):
                before[other] = self._bridged(other)
            self._detach(ch)
        del self._chans[ch.uid]
        if self._by_name.get(ch.name) is ch:
            del self._by_name[ch.name]
        call.chans.remove(ch)
        if call.primary is ch:
            call.primary = None
        if not ch.optimizing and not quiet_bridge:
            self._announce_unbridged(before, now, out)
        if call.chans and (ch.hold or ch.moh):
            self._eval_hold(call, now, out)

    def _end_call(self, call: _Call, now: float, out: list[CallEvent] | None, why: str) -> None:
        """End a call that has no live channel left. ``why`` overrides the cause."""
        if why:
            call.hangup_cause, call.hangup_cause_text = None, why
        elif call.leaver_cause is not None:
            call.hangup_cause, call.hangup_cause_text = call.leaver_cause, call.leaver_cause_text
        elif call.cause_first is not None:
            call.hangup_cause, call.hangup_cause_text = call.cause_first, call.cause_first_text
        else:
            call.hangup_cause, call.hangup_cause_text = call.cause_last, call.cause_last_text
        self._fire(call, _T.END, now, None)
        final = self._snapshot(call)
        if out is not None:
            out.append(CallEnded(final, now))
        del self._calls[call.id]
        for linkedid in call.linkedids:
            if self._by_linkedid.get(linkedid) is call:
                del self._by_linkedid[linkedid]
        ended = self._ended
        ended[call.id] = final
        if len(ended) > MAX_ENDED:
            del ended[next(iter(ended))]

    # -- handlers: channels --------------------------------------------------------

    def _on_newchannel(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        uid = d.get("Uniqueid")
        name = d.get("Channel")
        linkedid = d.get("Linkedid")
        if not uid or not name or not linkedid:
            self.stats.malformed += 1
            return []
        out: list[CallEvent] = []
        existing = self._chans.get(uid)
        if existing is not None:  # a repeated Newchannel: take it as a snapshot
            changed = self._absorb(existing, d, now, out)
            self._finish(existing.call, changed, out, now)
            return out
        ch, is_new = self._add_channel(uid, name, linkedid, d, now, out)
        # Seen from its start: no variable is set yet (Originate's are VarSets to come).
        ch.vars_rest = _VARS_EMPTY if self._varsets_seen else _VARS_PENDING
        call = ch.call
        if is_new:
            out.append(CallStarted(self._snapshot(call), now))
        trigger = _STATE_TRIGGERS.get(ch.state)
        if trigger is not None:
            self._fire(call, trigger, now, out)
        return out

    def _on_channel(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        ch = self._lookup(d)
        if ch is None:
            return []
        out: list[CallEvent] = []
        changed = self._absorb(ch, d, now, out)
        if changed:
            self._finish(ch.call, changed, out, now)
        return out

    def _on_hangup(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        ch = self._lookup(d)
        if ch is None:
            return []
        out: list[CallEvent] = []
        call = ch.call
        raw = d.get("Cause")
        cause: int | None = None
        if raw is not None:
            if raw.isdigit() and len(raw) <= 3:  # a Q.850 cause: 0..127
                cause = int(raw)
            else:
                self.stats.malformed += 1
        if cause is not None:
            text = d.get("Cause-txt")
            if cause != 0 and call.cause_first is None and not ch.optimizing:
                call.cause_first, call.cause_first_text = cause, text
            if cause != 0 and call.leaver == ch.uid:
                call.leaver_cause, call.leaver_cause_text = cause, text
            call.cause_last, call.cause_last_text = cause, text
        self._remove_channel(ch, now, out)
        if not call.chans:
            self._end_call(call, now, out, "")
        return out

    def _on_rename(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        ch = self._lookup(d)
        new = d.get("Newname")
        if ch is None:
            return []
        if not new:
            self.stats.malformed += 1
            return []
        out: list[CallEvent] = []
        self._rename(ch, new, now, out)
        # Asterisk renames in a masquerade, which merges the other channel's
        # variables into this one without a VarSet.
        ch.vars = None
        ch.vars_rest = _VARS_UNKNOWN
        return out

    def _rename(self, ch: _Chan, new: str, now: float, out: list[CallEvent]) -> None:
        self._displace(new, ch, now, out)
        if self._by_name.get(ch.name) is ch:
            del self._by_name[ch.name]
        ch.name = new
        ch.device = _device(new)
        ch.info = None
        self._by_name[new] = ch

    def _on_dial_begin(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        dest_uid = d.get("DestUniqueid")
        if dest_uid is None:
            self.stats.malformed += 1
            return []
        dest = self._chans.get(dest_uid)
        if dest is None:
            self.stats.orphans += 1
            return []
        out: list[CallEvent] = []
        source = self._chans.get(d.get("Uniqueid") or "")
        if (
            source is not None
            and source is not dest
            and dest.vars_rest != _VARS_UNKNOWN
            and (source.vars_rest == _VARS_UNKNOWN or source.vars_inherit)
        ):
            # Dial copies the caller's inheritable variables into the channel
            # it dials: the caller's are unknown, or one may be inherited.
            dest.vars_rest = _VARS_UNKNOWN
            dest.info = None
        changed: tuple[str, ...] = ()
        if source is not None:
            changed = self._absorb(source, d, now, out)
            if source.call.primary is source:
                source.call.last_party = dest
        self._fire(dest.call, _T.RING, now, out)
        if source is not None:
            self._finish(source.call, changed, out, now)
        return out

    def _on_queue(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        ch = self._lookup(d)
        if ch is None:
            return []
        out: list[CallEvent] = []
        changed = self._absorb(ch, d, now, out)
        queue = d.get("Queue")
        call = ch.call
        if queue and queue != call.queue:
            call.queue = queue
            changed += ("queue",)
        self._finish(call, changed, out, now)
        return out

    # -- handlers: bridges ---------------------------------------------------------

    def _on_bridge_enter(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        ch = self._lookup(d)
        if ch is None:
            return []
        bid = d.get("BridgeUniqueid")
        if not bid:
            self.stats.malformed += 1
            return []
        out: list[CallEvent] = []
        changed = self._absorb(ch, d, now, out)
        old = ch.bridge_id
        affected = self._calls_around(ch, (bid, old))
        before = {call: self._bridged(call) for call in affected}
        if old != bid:
            self._detach(ch)
        members = self._bridges.setdefault(bid, [])
        swap = self._chans.get(d.get("SwapUniqueid") or "")
        if swap is not None and swap.bridge_id == bid:
            self._detach(swap)
            members = self._bridges.setdefault(bid, [])
        if ch not in members:
            members.append(ch)
        ch.bridge_id = bid
        ch.info = None
        if len(members) >= 2:
            for member in members:
                member.call.was_bridged = True
                member.call.cause_first = None  # the call goes on: forget earlier hangups
                member.call.leaver = member.call.leaver_cause = None
        for call in affected:
            if call.id not in self._calls:
                continue
            after = self._bridged(call)
            if call is ch.call and len(members) >= 2:
                if swap is not None or d.get("SwapUniqueid"):
                    out.append(CallUpdated(self._snapshot(call), now, ("callee",)))
                else:
                    out.append(CallBridged(self._snapshot(call), now, bid))
            elif after and not before[call]:
                out.append(CallBridged(self._snapshot(call), now, bid))
            elif before[call] and not after:
                out.append(CallUnbridged(self._snapshot(call), now))
        self._finish(ch.call, changed, out, now)
        return out

    def _on_bridge_leave(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        ch = self._lookup(d)
        if ch is None:
            return []
        out: list[CallEvent] = []
        changed = self._absorb(ch, d, now, out)
        bid = d.get("BridgeUniqueid")
        if ch.bridge_id is not None and (bid is None or bid == ch.bridge_id):
            if (
                ch.call.leaver is None
                and not ch.optimizing
                and len(self._bridges.get(ch.bridge_id, ())) >= 2
            ):
                ch.call.leaver = ch.uid
            affected = self._calls_around(ch, (ch.bridge_id,))
            before = {call: self._bridged(call) for call in affected}
            self._detach(ch)
            if not ch.optimizing:
                self._announce_unbridged(before, now, out)
        elif bid is not None:
            members = self._bridges.get(bid)
            if members is not None and ch in members:
                members.remove(ch)
        self._finish(ch.call, changed, out, now)
        return out

    def _on_bridge_destroy(self, headers: Headers, now: float) -> list[CallEvent]:
        bid = _hdict(headers).get("BridgeUniqueid")
        if not bid:
            self.stats.malformed += 1
            return []
        members = self._bridges.get(bid)
        if not members:
            self._bridges.pop(bid, None)
            return []
        before: dict[_Call, bool] = {}
        for member in members:
            before.setdefault(member.call, self._bridged(member.call))
        for member in list(members):
            self._detach(member)
        self._bridges.pop(bid, None)
        out: list[CallEvent] = []
        self._announce_unbridged(before, now, out)
        return out

    # -- handlers: hold --------------------------------------------------------------

    def _hold_change(self, headers: Headers, now: float, moh: bool, on: bool) -> list[CallEvent]:
        d = _hdict(headers)
        ch = self._lookup(d)
        if ch is None:
            return []
        out: list[CallEvent] = []
        changed = self._absorb(ch, d, now, out)
        call = ch.call
        if moh:
            ch.moh = on and call.was_bridged
        else:
            ch.hold = on
        ch.info = None
        self._eval_hold(call, now, out)
        self._finish(call, changed, out, now)
        return out

    def _on_hold(self, headers: Headers, now: float) -> list[CallEvent]:
        return self._hold_change(headers, now, moh=False, on=True)

    def _on_unhold(self, headers: Headers, now: float) -> list[CallEvent]:
        return self._hold_change(headers, now, moh=False, on=False)

    def _on_moh_start(self, headers: Headers, now: float) -> list[CallEvent]:
        return self._hold_change(headers, now, moh=True, on=True)

    def _on_moh_stop(self, headers: Headers, now: float) -> list[CallEvent]:
        return self._hold_change(headers, now, moh=True, on=False)

    # -- handlers: transfers -------------------------------------------------------

    def _transfer_call(self, d: dict[str, str], *roles: str) -> _Call | None:
        """The call of the first live channel among the ``<role>Uniqueid`` headers."""
        seen = False
        for role in roles:
            uid = d.get(role + "Uniqueid")
            if uid is None:
                continue
            seen = True
            ch = self._chans.get(uid)
            if ch is not None:
                return ch.call
        if seen:
            self.stats.orphans += 1
        else:
            self.stats.malformed += 1
        return None

    def _transfer(
        self, call: _Call, d: dict[str, str], kind: TransferKind, target: str | None, now: float
    ) -> list[CallEvent]:
        out: list[CallEvent] = []
        if not self._fire(call, _T.TRANSFER, now, None):
            return out
        # The transferer is leaving: its own hold (Atxfer puts it on hold) is over.
        for role in ("TransfererUniqueid", "OrigTransfererUniqueid", "SecondTransfererUniqueid"):
            transferer = self._chans.get(d.get(role) or "")
            if transferer is not None:
                transferer.hold = transferer.moh = False
                transferer.info = None
        call.transferred_to = target
        out.append(CallTransferred(self._snapshot(call), now, kind, target))
        self._fire(call, _T.SETTLE, now, out)
        self._eval_hold(call, now, out)
        return out

    def _on_blind_transfer(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        if d.get("Result") != "Success":
            return []
        call = self._transfer_call(d, "Transferee", "Transferer")
        if call is None:
            return []
        return self._transfer(call, d, "blind", d.get("Extension") or None, now)

    def _on_attended_transfer(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        if d.get("Result") != "Success":
            return []
        call = self._transfer_call(
            d, "Transferee", "TransferTarget", "OrigTransferer", "SecondTransferer"
        )
        if call is None:
            return []
        target = (
            d.get("TransferTargetChannel") or self._merged_target(d) or d.get("DestApp") or None
        )
        return self._transfer(call, d, "attended", target, now)

    def _merged_target(self, d: dict[str, str]) -> str | None:
        """For an AttendedTransfer without TransferTarget* headers: the channel
        in the destination bridge that is neither transferee nor transferer."""
        if d.get("DestType") != "Bridge":
            return None
        members = self._bridges.get(d.get("DestBridgeUniqueid") or "")
        if not members:
            return None
        parties = {
            d.get(role + "Uniqueid")
            for role in ("Transferee", "OrigTransferer", "SecondTransferer", "Transferer")
        }
        for member in members:
            if member.uid not in parties:
                return member.name
        return None

    # -- handlers: Local channels --------------------------------------------------

    def _local_pair(self, d: dict[str, str]) -> tuple[_Chan, _Chan] | None:
        one_uid = d.get("LocalOneUniqueid")
        two_uid = d.get("LocalTwoUniqueid")
        if not one_uid or not two_uid:
            self.stats.malformed += 1
            return None
        one = self._chans.get(one_uid)
        two = self._chans.get(two_uid)
        if one is None or two is None:
            self.stats.orphans += 1
            return None
        return one, two

    def _on_local_bridge(self, headers: Headers, now: float) -> list[CallEvent]:
        pair = self._local_pair(_hdict(headers))
        out: list[CallEvent] = []
        if pair is not None and pair[0].call is not pair[1].call:
            self._move(pair[1], pair[0].call, now, out)
        return out

    def _on_local_optimization_begin(self, headers: Headers, now: float) -> list[CallEvent]:
        pair = self._local_pair(_hdict(headers))
        if pair is not None:
            pair[0].optimizing = pair[1].optimizing = True
        return []

    def _on_local_optimization_end(self, headers: Headers, now: float) -> list[CallEvent]:
        # Nothing to do: the optimised halves leave through their Hangup events.
        self._local_pair(_hdict(headers))
        return []

    # -- handlers: recording -------------------------------------------------------

    def _on_varset(self, headers: Headers, now: float) -> list[CallEvent]:
        if not self._varsets_seen:
            self._first_varset()
        variable = _varset_variable(headers)
        if variable is None:
            return []
        watched = _WATCHED_NAMES.get(variable)
        if watched is None:
            if variable == _MIXMONITOR_FILENAME:
                d = _hdict(headers)
                ch = self._lookup(d)
                if ch is not None:
                    ch.mixmon_file = d.get("Value")
            return []  # the common case: a variable we do not care about
        d = _hdict(headers)
        ch = self._lookup(d)
        if ch is None:
            return []
        value = d.get("Value")
        if value is None:
            self.stats.malformed += 1
            return []
        self._set_var(ch, watched, value)
        if value and variable[0] == "_":
            ch.vars_inherit = True  # never unset: a dial from it stays unknown
        return []

    def _set_var(self, ch: _Chan, name: str, value: str) -> None:
        values = ch.vars
        if values is None:
            values = ch.vars = {}
        if values.get(name) != value:
            values[name] = value
            ch.info = None

    def _first_varset(self) -> None:
        """This link delivers VarSet events: channels seen from their
        Newchannel on have no watched variable that no VarSet named."""
        self._varsets_seen = True
        for ch in self._chans.values():
            if ch.vars_rest == _VARS_PENDING:
                ch.vars_rest = _VARS_EMPTY
                ch.info = None

    def _on_mixmonitor_start(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        ch = self._lookup(d)
        if ch is None:
            return []
        out: list[CallEvent] = []
        changed = self._absorb(ch, d, now, out)
        ch.recordings += 1
        out.append(
            RecordingStarted(
                self._snapshot(ch.call), now, ch.name, d.get("MixMonitorID"), ch.mixmon_file
            )
        )
        self._finish(ch.call, changed, out, now)
        return out

    def _on_mixmonitor_stop(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        ch = self._lookup(d)
        if ch is None:
            return []
        out: list[CallEvent] = []
        changed = self._absorb(ch, d, now, out)
        if ch.recordings:
            ch.recordings -= 1
        out.append(
            RecordingStopped(
                self._snapshot(ch.call), now, ch.name, d.get("MixMonitorID"), ch.mixmon_file
            )
        )
        self._finish(ch.call, changed, out, now)
        return out

    def _on_mixmonitor_mute(self, headers: Headers, now: float) -> list[CallEvent]:
        d = _hdict(headers)
        ch = self._lookup(d)
        if ch is None:
            return []
        out: list[CallEvent] = []
        changed = self._absorb(ch, d, now, out)
        muted = (d.get("State") or "").strip().lower() in ("1", "true", "yes", "on")
        direction = d.get("Direction") or "both"
        out.append(RecordingMuted(self._snapshot(ch.call), now, ch.name, direction, muted))
        self._finish(ch.call, changed, out, now)
        return out

    # -- resync --------------------------------------------------------------------

    def _resync(self, snapshot: Sequence[AmiEvent], now: float) -> list[CallEvent]:
        listed: dict[str, dict[str, str]] = {}
        names: dict[str, str] = {}  # channel name -> Uniqueid of its row
        for event in snapshot:
            d = _hdict(event.headers)
            if d.get("Event") != "CoreShowChannel":
                continue
            if not d.get("Uniqueid") or not d.get("Channel") or not d.get("Linkedid"):
                self.stats.malformed += 1
                continue
            uid, name = d["Uniqueid"], d["Channel"]
            # A Uniqueid or a name listed twice: the later row wins.
            previous = listed.pop(uid, None)
            if previous is not None:
                self.stats.malformed += 1
                del names[previous["Channel"]]
            earlier = names.pop(name, None)
            if earlier is not None:
                self.stats.malformed += 1
                del listed[earlier]
            listed[uid] = d
            names[name] = uid

        out: list[CallEvent] = []
        # VarSet events may have been missed: every watched variable is
        # unknown, and whether this link delivers them is to be seen again.
        self._varsets_seen = False
        old_calls = list(self._calls.values())
        was_bridged = {call: self._bridged(call) for call in old_calls}
        changed: dict[_Call, tuple[str, ...]] = {}

        # 1. Channels the PBX no longer has.
        for ch in [ch for uid, ch in self._chans.items() if uid not in listed]:
            call = ch.call
            self._remove_channel(ch, now, out, quiet_bridge=True)
            if not call.chans:
                self._end_call(call, now, out, RESYNC_LOST)
            else:
                changed[call] = (*changed.get(call, ()), "channels")

        # 2. Survivors take the listed values (this may re-link them).
        for uid, d in listed.items():
            survivor = self._chans.get(uid)
            if survivor is not None:
                what = self._absorb(survivor, d, now, out)
                if survivor.name != d["Channel"]:
                    self._rename(survivor, d["Channel"], now, out)
                if what:
                    changed[survivor.call] = (*changed.get(survivor.call, ()), *what)

        # 3. Channels we did not know: the call's first channel first.
        fresh = [(uid, d) for uid, d in listed.items() if uid not in self._chans]
        fresh.sort(key=lambda item: item[0] != item[1]["Linkedid"])
        new_calls: list[_Call] = []
        for uid, d in fresh:
            created = now - _duration(d.get("Duration"))
            ch, is_new = self._add_channel(uid, d["Channel"], d["Linkedid"], d, now, out)
            ch.created_at = created
            ch.info = None
            call = ch.call
            if is_new:
                new_calls.append(call)
                call.started_at = created
            elif call in new_calls:
                call.started_at = min(call.started_at, created)
            else:
                changed[call] = (*changed.get(call, ()), "channels")

        # 4. Bridges exactly as listed.
        bridges: dict[str, list[_Chan]] = {}
        for uid, d in listed.items():
            ch = self._chans[uid]
            bid = d.get("BridgeId") or None
            ch.bridge_id = bid
            ch.vars = None
            ch.vars_rest = _VARS_UNKNOWN
            ch.vars_inherit = False
            ch.info = None
            if bid is not None:
                bridges.setdefault(bid, []).append(ch)
        self._bridges = bridges
        for members in bridges.values():
            if len(members) >= 2:
                for member in members:
                    member.call.was_bridged = True

        # 5. Announce.
        for call in new_calls:
            states = {ch.state for ch in call.chans}
            if "Up" in states:
                self._fire(call, _T.ANSWER, now, None)
            elif "Ringing" in states:
                self._fire(call, _T.RING, now, None)
            out.append(CallStarted(self._snapshot(call), now))
        for call in old_calls:
            if call.id not in self._calls:
                continue
            self._eval_hold(call, now, out)
            after = self._bridged(call)
            if after and not was_bridged[call]:
                bid = next(ch.bridge_id for ch in call.chans if ch.bridge_id)
                out.append(CallBridged(self._snapshot(call), now, bid))
            elif was_bridged[call] and not after:
                out.append(CallUnbridged(self._snapshot(call), now))
            seen = changed.get(call)
            if seen:
                self._finish(call, tuple(dict.fromkeys(seen)), out, now)
        return out
