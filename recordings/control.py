"""Recording control: start by queue policy when an agent answers, pause and
resume for card payments, stop at hangup, then hand the file to the ingestor.

Start. ``RecordingControl.wrap_interactions(inner)`` wraps VoiceRouting's
interaction recorder (as the desk's screen-pops do): when VoiceRouting reports a
routed call connected to its agent (``voice_assigned``), the queue's policy
(``[recordings.queues.<queue>]``, else ``[recordings.default]``) decides:
``all``, ``none`` or ``percent`` (deterministic per interaction: a hash of the
interaction id, so a restart or a second event never decides differently). A
recorded call gets a row (state ``recording``, stored first), then AMI
``MixMonitor`` on the customer's channel with::

    File: callwright-<interaction id>-<recording id>.wav   (relative: Asterisk's monitor dir)
    Options: bi(CALLWRIGHT_MIXMON_ID)

MixMonitor mixes both directions by default; ``b`` keeps only the bridged
audio (not the music of Callwright's hold, when the customer is out of the
bridge), ``i(...)`` makes Asterisk answer with the ``MixMonitorID`` kept as
the row's ``external_id`` (used by pause/resume). If Asterisk refuses, the row
becomes ``failed`` and the reason goes to the audit log (action
``recordings.start``, actor ``system``).

Stop. Asterisk stops a MixMonitor when its channel hangs up (a ``Hangup``, no
``MixMonitorStop``: tests/fixtures/ami-real/09); the tracker reports
``RecordingStopped`` for both. Then (and on ``CallEnded`` for a recording the
tracker never reported stopped) the row is marked ``ended`` (file in the spool
dir) and the ingestor (``recordings.ingest.Ingestor.finish``) moves the file
into storage in the background: it waits until the WAV file is closed (its
RIFF size matches the file, as Asterisk fixes the header on close) for at
most ``settle_seconds``.

Transfers. The rule is voice routing's: an interaction ends (``voice_ended``)
when its call ends or when the caller is back at the holding point (a transfer
to a queue, or back from an IVR flow); only then does a call that goes on get
``StopMixMonitor`` here, so the next interaction records its own file. A
transfer into an IVR flow (the payment line, context ``callwright-payment``)
is no end: the agent's leg leaves (their task completes) but the MixMonitor
on the customer's channel keeps running through the flow, which pauses and
resumes it; it stops when the flow queues the caller back at the holding
point (or at the hangup). A caller hanging up while paused: the recording
ends with its open pause closed at the end (``mark_ended``).

Pause/resume: ``pause(call_id, source=, actor_id=)`` / ``resume(...)`` send
``MixMonitorMute`` (Direction both, State 1 / 0, with the MixMonitorID) and,
once Asterisk accepted it, store the pause with its time, source and actor
(``recording_pauses``) and push the new state. Errors (nothing changes):
``NotRecording`` (no running recording on that call), ``AlreadyPaused``,
``NotPaused``; ``cti.errors.CtiError`` when Asterisk refuses or the link is
down.

The IVR hook: the IVR adapters call ``pause_for(call_id, source="ivr")`` and
``resume_for(call_id, source="ivr")`` on the runtime's ``recording_control``
(around a card-number ``<Gather>`` or ``GET DATA``); ``call_id`` is
Callwright's call id (``cti.calls.model.Call.id``: the Linkedid the call was
first seen with; an AGI channel's ``agi_uniqueid`` finds it through
``CallService.calls()``). They raise the same errors (``NotRecording`` when the
call has no running recording yet, e.g. before an agent answered, or is on
Twilio, whose recordings are paused through Twilio) and are audited with actor
``ivr``.

State pushed (``publish(data, agent_id)``; the runtime sends it as the desk's
``recording`` room event to ``supervisors`` and ``agent:{id}``, see
agent_desk/EVENTS.md) and returned by ``state(call_id)``::

    {call_id, interaction_id, recording_id, state, agent_id, started_at,
     ended_at, paused_since, pauses: [{paused_at, resumed_at, source, actor_id}]}

``state``: ``recording``, ``paused``, ``ended`` (stopped, file in the spool),
``stored``, ``failed``, ``not_recorded`` (the policy said no, or recording is
disabled); times are epoch seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from sqlalchemy import select

from agent_desk.policy import Audit  # the shape of agent_desk.audit.AuditLog.record
from cti.ami.messages import AmiAction, AmiResponse
from cti.calls.model import Call, CallEnded, CallEvent, ChannelInfo, RecordingStopped
from cti.errors import CtiError
from recordings.persistence import recordings as recordings_table
from recordings.repository import Pause, Recording, RecordingRepository, new_recording_id

__all__ = [
    "MIXMONITOR_OPTIONS",
    "AlreadyPaused",
    "NotPaused",
    "NotRecording",
    "RecordingControl",
    "RecordingControlError",
    "RecordingPolicyView",
    "should_record",
    "spool_name_for",
]

log = logging.getLogger(__name__)

MIXMONITOR_OPTIONS: Final = "bi(CALLWRIGHT_MIXMON_ID)"
LIVE_STATES: Final = ("recording", "paused")


class RecordingControlError(Exception):
    """A pause or resume that cannot happen; nothing was changed."""


class NotRecording(RecordingControlError):
    pass


class AlreadyPaused(RecordingControlError):
    pass


class NotPaused(RecordingControlError):
    pass


# -- pure decisions --------------------------------------------------------------


class RecordingPolicyView(Protocol):
    """``callwright.config.RecordingPolicy``."""

    @property
    def record(self) -> str: ...

    @property
    def percent(self) -> int: ...


def should_record(policy: RecordingPolicyView, interaction_id: int) -> bool:
    """``all``: yes; ``none``: no; ``percent``: yes for ``percent`` % of
    interactions, picked by a hash of the interaction id (the same answer every
    time for one interaction)."""
    if policy.record == "all":
        return True
    if policy.record != "percent":
        return False
    digest = hashlib.sha256(f"callwright-recording:{interaction_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < policy.percent


def spool_name_for(interaction_id: int, recording_id: str) -> str:
    return f"callwright-{interaction_id}-{recording_id}.wav"


def wav_closed(path: Path) -> bool:
    """Whether a WAV file's RIFF size matches its length (Asterisk and the
    simulator fix the header when the recording closes)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
            size = os.fstat(handle.fileno()).st_size
    except OSError:
        return False
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    (riff,) = struct.unpack("<I", head[4:8])
    return bool(riff + 8 == size or riff + 9 == size)  # a pad byte for odd data


# -- ports ------------------------------------------------------------------------------


class Calls(Protocol):
    """``cti.calls.service.CallService``."""

    def get(self, call_id: str) -> Call: ...

    def customer_leg(self, call: Call) -> ChannelInfo: ...


class Ami(Protocol):
    async def send(self, action: AmiAction, *, timeout: float | None = None) -> AmiResponse: ...


class Ingest(Protocol):
    """``recordings.ingest.Ingestor``."""

    async def finish(self, recording_id: str, spool_path: Path) -> Any: ...


class InteractionLookup(Protocol):
    """``crm.repository.InteractionRepository``."""

    async def get(self, interaction_id: int) -> Any: ...


class Policies(Protocol):
    """``callwright.config.RecordingsConfig``."""

    @property
    def enabled(self) -> bool: ...

    def policy_for(self, queue: str | None) -> RecordingPolicyView: ...


class VoiceInteractions(Protocol):
    """``routing.voice.Interactions``."""

    async def voice_started(self, call: Call, customer: Any, queue_id: str) -> int: ...

    async def voice_assigned(self, interaction_id: int, agent_id: str) -> None: ...

    async def voice_ended(self, interaction_id: int, call: Call) -> None: ...


Publish = Callable[[dict[str, Any], "str | None"], Awaitable[None]]


@dataclass(frozen=True)
class _Actor:
    id: str
    role: str


SYSTEM: Final = _Actor("system", "service")
IVR: Final = _Actor("ivr", "service")


@dataclass(eq=False)
class _Live:
    """A recording running on a call now."""

    recording_id: str
    interaction_id: int
    call_id: str
    channel: str
    spool_name: str
    agent_id: str | None
    mixmonitor_id: str | None
    paused: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RecordingControl:
    def __init__(
        self,
        repo: RecordingRepository,
        *,
        calls: Calls,
        ami: Ami,
        interactions: InteractionLookup,
        policies: Policies,
        spool_dir: Path,
        ingestor: Ingest | None = None,
        publish: Publish | None = None,
        audit: Audit | None = None,
        clock: Callable[[], datetime] = _utc_now,
        settle_seconds: float = 5.0,
    ) -> None:
        self.repo = repo
        self.calls = calls
        self.ami = ami
        self.interactions = interactions
        self.policies = policies
        self.spool_dir = spool_dir
        self.ingestor = ingestor
        self.publish = publish
        self.audit = audit
        self.clock = clock
        self.settle_seconds = settle_seconds
        self._decided: dict[int, str | None] = {}  # interaction id -> recording id or None
        self._live: dict[str, _Live] = {}  # call id -> the running recording
        # call id -> (interaction id, agent id) of calls the policy left unrecorded
        self._not_recorded: dict[str, tuple[int, str | None]] = {}
        self._ingests: set[asyncio.Task[None]] = set()

    def wrap_interactions(self, inner: VoiceInteractions) -> VoiceInteractions:
        return _RecordingInteractions(self, inner)

    async def stop(self) -> None:
        """Wait for the ingests under way (a stop mid-ingest leaves the row
        ``ended`` and the file in the spool: ``recordings check`` finishes it)."""
        tasks = list(self._ingests)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def drain(self) -> None:
        """Wait until the ingests started so far are done (tests)."""
        while self._ingests:
            await asyncio.gather(*list(self._ingests), return_exceptions=True)

    # -- start ------------------------------------------------------------------------

    async def call_answered(self, interaction_id: int, agent_id: str | None) -> None:
        """A routed call is connected to its agent (called on every call event
        while it is; only the first one decides)."""
        if interaction_id in self._decided or not self.policies.enabled:
            return
        interaction = await self.interactions.get(interaction_id)
        if interaction is None or interaction.call_id is None:
            return
        call_id: str = interaction.call_id
        existing = await self._live_row(interaction_id)
        if existing is not None:
            # A restart while recording: carry on with the running MixMonitor.
            self._decided[interaction_id] = existing.id
            self._adopt(existing, call_id, agent_id)
            return
        policy = self.policies.policy_for(interaction.queue)
        if not should_record(policy, interaction_id):
            self._decided[interaction_id] = None
            self._not_recorded[call_id] = (interaction_id, agent_id)
            await self._publish(self._not_recorded_json(call_id, interaction_id, agent_id))
            return
        try:
            call = self.calls.get(call_id)
            channel = self.calls.customer_leg(call).name
        except CtiError as exc:
            log.info("interaction %s: call %s not recorded: %s", interaction_id, call_id, exc)
            return
        self._decided[interaction_id] = None
        await self._start(interaction, call_id, channel, agent_id)

    async def _start(
        self, interaction: Any, call_id: str, channel: str, agent_id: str | None
    ) -> None:
        recording_id = new_recording_id()
        spool_name = spool_name_for(interaction.id, recording_id)
        row = await self.repo.create(
            interaction_id=interaction.id,
            source="asterisk",
            call_id=call_id,
            agent_id=int(agent_id) if agent_id is not None and agent_id.isdigit() else None,
            customer_id=interaction.customer_id,
            queue=interaction.queue,
            spool_name=spool_name,
            recording_id=recording_id,
            started_at=self.clock(),
        )
        self._decided[interaction.id] = row.id
        live = _Live(row.id, interaction.id, call_id, channel, spool_name, agent_id, None)
        self._live[call_id] = live
        action = AmiAction.build(
            "MixMonitor", {"Channel": channel, "File": spool_name, "Options": MIXMONITOR_OPTIONS}
        )
        # Held until Asterisk answered: a pause asked meanwhile waits for the
        # MixMonitorID rather than finding no MixMonitor on the channel.
        async with live.lock:
            try:
                response = await self.ami.send(action)
            except CtiError as exc:
                self._live.pop(call_id, None)
                failed = await self.repo.update(row.id, state="failed", ended_at=self.clock())
                log.warning("recording %s of call %s not started: %s", row.id, call_id, exc)
                await self._audit(
                    SYSTEM,
                    "recordings.start",
                    "failed",
                    row.id,
                    {"call_id": call_id, "reason": str(exc)},
                )
                await self._publish(await self._json(failed, agent_id))
                return
            live.mixmonitor_id = response.get("MixMonitorID") or None
            if live.mixmonitor_id is not None:
                row = await self.repo.update(row.id, external_id=live.mixmonitor_id)
        log.info("recording %s of call %s started on %s", row.id, call_id, channel)
        await self._publish(await self._json(row, agent_id))

    def _adopt(self, row: Recording, call_id: str, agent_id: str | None) -> None:
        try:
            channel = self.calls.customer_leg(self.calls.get(call_id)).name
        except CtiError:
            return
        self._live[call_id] = _Live(
            row.id,
            row.interaction_id,
            call_id,
            channel,
            row.spool_name or "",
            agent_id,
            row.external_id,
            paused=row.state == "paused",
        )

    async def _live_row(self, interaction_id: int) -> Recording | None:
        for row in await self.repo.list_for_interaction(interaction_id):
            if row.state in LIVE_STATES and row.source == "asterisk":
                return row
        return None

    # -- stop -------------------------------------------------------------------------

    async def on_call_event(self, event: CallEvent) -> None:
        """Subscribed to the call service: a recording that stopped (StopMixMonitor
        or the channel's hangup) or a call that ended."""
        try:
            if isinstance(event, RecordingStopped):
                live = self._live.get(event.call.id)
                if live is not None and (
                    event.file is None or Path(event.file).name == live.spool_name
                ):
                    await self._stopped(live)
            elif isinstance(event, CallEnded):
                live = self._live.get(event.call.id)
                if live is not None:
                    await self._stopped(live)
                self._forget(event.call.id)
        except Exception:
            log.exception("recording control: %s not handled", type(event).__name__)

    def _forget(self, call_id: str) -> None:
        gone = self._not_recorded.pop(call_id, None)
        if gone is not None:
            self._decided.pop(gone[0], None)

    async def call_ended(self, interaction_id: int, call: Call) -> None:
        """VoiceRouting's ``voice_ended``: the interaction is over. If the call
        goes on (transferred to a queue: a new interaction follows), its
        recording is stopped here so the next one gets its own file."""
        live = self._live.get(call.id)
        if live is not None and live.interaction_id == interaction_id:
            if call.ended_at is None:
                fields = {"Channel": live.channel, "MixMonitorID": live.mixmonitor_id}
                try:
                    await self.ami.send(AmiAction.build("StopMixMonitor", fields))
                except CtiError as exc:
                    log.info("recording %s: StopMixMonitor: %s", live.recording_id, exc)
            await self._stopped(live)
        self._decided.pop(interaction_id, None)
        self._forget(call.id)

    async def _stopped(self, live: _Live) -> None:
        async with live.lock:
            if self._live.get(live.call_id) is not live:
                return  # already handled
            row = await self.repo.mark_ended(live.recording_id, ended_at=self.clock())
            if self.ingestor is not None:
                task = asyncio.create_task(self._ingest(row, live), name=f"ingest-{row.id}")
                self._ingests.add(task)
                task.add_done_callback(self._ingests.discard)
            del self._live[live.call_id]  # gone from the live map only once ended
        await self._publish(await self._json(row, live.agent_id))

    async def _ingest(self, row: Recording, live: _Live) -> None:
        assert self.ingestor is not None
        path = self.spool_dir / live.spool_name
        # A file on a real Asterisk is closed by its recording thread just
        # after the Hangup: poll the header (no event says when) a little.
        for _ in range(max(1, int(self.settle_seconds / 0.05))):
            if await asyncio.to_thread(wav_closed, path):
                break
            await asyncio.sleep(0.05)
        try:
            await self.ingestor.finish(row.id, path)
        except Exception:
            log.exception(
                "recording %s: ingest of %s failed; left for `recordings check`", row.id, path
            )
            return
        stored = await self.repo.get(row.id)
        if stored is not None:
            await self._publish(await self._json(stored, live.agent_id))

    # -- pause / resume ---------------------------------------------------------------

    async def pause(
        self, call_id: str, *, source: str = "api", actor_id: str | None = None
    ) -> dict[str, Any]:
        return await self._set_paused(call_id, True, source=source, actor_id=actor_id)

    async def resume(
        self, call_id: str, *, source: str = "api", actor_id: str | None = None
    ) -> dict[str, Any]:
        return await self._set_paused(call_id, False, source=source, actor_id=actor_id)

    async def _set_paused(
        self, call_id: str, paused: bool, *, source: str, actor_id: str | None
    ) -> dict[str, Any]:
        """Mute (or unmute) the MixMonitor, then store the pause opened (or closed)."""
        live = self._live.get(call_id)
        if live is None:
            raise NotRecording(f"call {call_id!r} is not being recorded")
        async with live.lock:
            if self._live.get(call_id) is not live:
                raise NotRecording(f"call {call_id!r} is not being recorded")
            if live.paused and paused:
                raise AlreadyPaused(f"the recording of call {call_id!r} is already paused")
            if not live.paused and not paused:
                raise NotPaused(f"the recording of call {call_id!r} is not paused")
            await self._mute(live, paused)
            live.paused = paused
            if paused:
                await self.repo.add_pause(
                    live.recording_id, source=source, actor_id=actor_id, at=self.clock()
                )
            else:
                await self.repo.end_pause(live.recording_id, at=self.clock())
            row = await self._require(live.recording_id)
            data = await self._json(row, live.agent_id)
        await self._publish(data)
        return data

    async def pause_for(self, call_id: str, source: str = "ivr") -> dict[str, Any]:
        """The IVR hook: pause the call's recording (e.g. before a card number)."""
        data = await self.pause(call_id, source=source, actor_id=IVR.id)
        await self._audit(
            IVR, "recordings.pause", "allowed", data["recording_id"], {"call_id": call_id}
        )
        return data

    async def resume_for(self, call_id: str, source: str = "ivr") -> dict[str, Any]:
        """The IVR hook: resume the call's recording."""
        data = await self.resume(call_id, source=source, actor_id=IVR.id)
        await self._audit(
            IVR, "recordings.resume", "allowed", data["recording_id"], {"call_id": call_id}
        )
        return data

    async def _mute(self, live: _Live, state: bool) -> None:
        fields: dict[str, str | None] = {
            "Channel": live.channel,
            "Direction": "both",
            "State": "1" if state else "0",
            "MixMonitorID": live.mixmonitor_id,
        }
        await self.ami.send(AmiAction.build("MixMonitorMute", fields))

    # -- state ------------------------------------------------------------------------

    async def state(self, call_id: str) -> dict[str, Any]:
        """The recording state of a call (live or ended)."""
        live = self._live.get(call_id)
        if live is not None:
            return await self._json(await self._require(live.recording_id), live.agent_id)
        row = await self._latest_for_call(call_id)
        if row is not None:
            return await self._json(row, None if row.agent_id is None else str(row.agent_id))
        not_recorded = self._not_recorded.get(call_id)
        interaction_id, agent_id = not_recorded if not_recorded is not None else (None, None)
        return self._not_recorded_json(call_id, interaction_id, agent_id)

    async def _latest_for_call(self, call_id: str) -> Recording | None:
        query = (
            select(recordings_table.c.id)
            .where(recordings_table.c.call_id == call_id)
            .order_by(recordings_table.c.created_at.desc())
            .limit(1)
        )
        async with self.repo.engine.connect() as conn:
            recording_id = (await conn.execute(query)).scalar()
        return None if recording_id is None else await self.repo.get(recording_id)

    async def _require(self, recording_id: str) -> Recording:
        row = await self.repo.get(recording_id)
        if row is None:
            raise NotRecording(f"recording {recording_id} is gone")
        return row

    async def _json(self, row: Recording, agent_id: str | None) -> dict[str, Any]:
        pauses = await self.repo.pauses(row.id)
        open_pause = next((p for p in pauses if p.resumed_at is None), None)
        return {
            "call_id": row.call_id,
            "interaction_id": row.interaction_id,
            "recording_id": row.id,
            "state": row.state,
            "agent_id": agent_id,
            "started_at": _epoch(row.started_at),
            "ended_at": _epoch(row.ended_at),
            "paused_since": None
            if open_pause is None or row.state != "paused"
            else _epoch(open_pause.paused_at),
            "pauses": [_pause_json(p) for p in pauses],
        }

    @staticmethod
    def _not_recorded_json(
        call_id: str, interaction_id: int | None, agent_id: str | None
    ) -> dict[str, Any]:
        return {
            "call_id": call_id,
            "interaction_id": interaction_id,
            "recording_id": None,
            "state": "not_recorded",
            "agent_id": agent_id,
            "started_at": None,
            "ended_at": None,
            "paused_since": None,
            "pauses": [],
        }

    async def _publish(self, data: dict[str, Any]) -> None:
        if self.publish is None:
            return
        try:
            await self.publish(data, data.get("agent_id"))
        except Exception:
            log.exception("recording state of call %s not pushed", data.get("call_id"))

    async def _audit(
        self, actor: _Actor, action: str, outcome: str, subject: str, detail: dict[str, Any]
    ) -> None:
        if self.audit is None:
            return
        try:
            await self.audit.record(
                actor=actor, action=action, outcome=outcome, subject=subject, detail=detail
            )
        except Exception:
            log.exception(
                "audit row not written: %s %s on %s (%s)", outcome, action, subject, detail
            )


def _pause_json(pause: Pause) -> dict[str, Any]:
    return {
        "paused_at": _epoch(pause.paused_at),
        "resumed_at": _epoch(pause.resumed_at),
        "source": pause.source,
        "actor_id": pause.actor_id,
    }


class _RecordingInteractions:
    """VoiceRouting's interaction recorder, with recording decisions on the side."""

    def __init__(self, control: RecordingControl, inner: VoiceInteractions) -> None:
        self.control = control
        self.inner = inner

    async def voice_started(self, call: Call, customer: Any, queue_id: str) -> int:
        return await self.inner.voice_started(call, customer, queue_id)

    async def voice_assigned(self, interaction_id: int, agent_id: str) -> None:
        await self.inner.voice_assigned(interaction_id, agent_id)
        try:
            await self.control.call_answered(interaction_id, agent_id)
        except Exception:
            log.exception("interaction %s: recording not started", interaction_id)

    async def voice_ended(self, interaction_id: int, call: Call) -> None:
        await self.inner.voice_ended(interaction_id, call)
        try:
            await self.control.call_ended(interaction_id, call)
        except Exception:
            log.exception("interaction %s: recording not stopped", interaction_id)
