"""The FastAGI adapter: IVR flows for Asterisk callers.

The dialplan runs ``AGI(agi://<agi_host>:<agi_port>/<flow>)`` (see
docs/asterisk/extensions.conf); ``FastAgiIvr.handle`` is the ``AgiServer``
handler. The flow name is the script part of the URL (``agi_network_script``).
The runner (``ivr.runner``) stores each step and does the lookups and the
back office; this module renders the rest with AGI commands, as Asterisk 22
answers them (tests/fixtures/ami/11-fastagi.txt):

=====================  ======================================================
interpreter            AGI
=====================  ======================================================
``Say``                ``STREAM FILE <sound> ""`` when the prompt names a sound
                       (Asterisk looks it up in the channel's language
                       folder); a prompt with text only is sent to the
                       Asterisk console with ``VERBOSE`` (no TTS engine is
                       assumed: give every prompt a ``sound`` for real callers)
``SetLanguage``        ``SET VARIABLE CHANNEL(language) <language>``
``GatherDigits``       the prompts with ``STREAM FILE <sound> 0123456789*#``
                       (a key interrupts them and counts), then ``WAIT FOR
                       DIGIT <timeout ms>`` per further key up to
                       ``max_digits`` or ``finish_on_key``; no key at all is
                       ``NoInput``. (``GET DATA`` always ends on ``#``, cannot
                       take a key pressed during an earlier prompt and plays one
                       file only: the per-key loop gives the same semantics as
                       Twilio's ``<Gather>``.)
``AwaitRecording``     the prompts, then ``RECORD FILE <file> wav <finish key>
                       <ms> BEEP``; ``(dtmf)``/``(timeout)`` end a message,
                       ``(hangup)`` too (``hung_up``); the file name, relative
                       to Asterisk's sounds dir, goes on the voicemail task
``Enqueue``            ``SET VARIABLE CALLWRIGHT_QUEUE <queue>`` and
                       ``CALLWRIGHT_IVR_SESSION <id>``, then return: the
                       dialplan goes on to ``callwright-hold``, where voice
                       routing reads the stored session for the task
``AwaitTransfer``      ``SET VARIABLE CALLWRIGHT_TRANSFER <number>`` (and
                       ``CALLWRIGHT_TRANSFER_TIMEOUT``), ``SET CONTEXT
                       callwright-ivr-transfer``, ``SET EXTENSION <number>``,
                       ``SET PRIORITY 1`` and return: that context dials it
                       (without transfer features for the caller). The
                       session ends ``transferred``; a Dial that did not
                       connect runs ``TRANSFER_FAILED_SCRIPT``, which takes
                       the flow's ``failure`` branch (below)
``PauseRecording``     the call's recording paused (``ResumeRecording``: resumed)
                       through Callwright's recording control, not AGI: see
                       below
``Hangup``             ``HANGUP``
``Done``               ``SET VARIABLE CALLWRIGHT_IVR <outcome>``; ``failed``
                       returns to the dialplan, which queues the caller in the
                       default queue (never silence)
=====================  ======================================================

An unknown flow or a store failure: ``VERBOSE`` a message, ``CALLWRIGHT_IVR``
``failed``, return (the caller is queued in the default queue). The caller
hanging up (``AgiHangup``: the HANGUP line, a 511 reply, the connection
closing) ends the session ``abandoned`` at the node it was waiting in.

Recording pause and resume (a flow's ``recording`` node). The AGI channel is
the customer's: its ``agi_uniqueid`` names a channel of a tracked call
(``CallService.calls()``), and ``recordings.control.RecordingControl``
``pause_for(call_id, source="ivr")`` / ``resume_for`` sends ``MixMonitorMute``
(both directions) on that call's MixMonitor and stores the pause with its
times, source ``ivr`` and actor ``ivr`` (audited). Done before the next
prompt plays. A call that is not recorded (no MixMonitor: the policy said no,
or no agent answered yet), already paused or not paused is logged at info and
the flow goes on; so is a refusal by Asterisk or a link down (logged as a
warning: the flow never stops for a recording). Then the card digits are not
muted by Callwright; with the MixMonitor option ``b`` (recordings.control)
Asterisk writes nothing while the caller is out of the agent's bridge, which
is where the IVR runs, so they are not in the file either way.

Transferred into a flow: ``CallInfo.origin_queue`` is the queue of the
call's latest interaction (``InteractionRepository.by_call_id``), looked up
only for flows with a ``queue`` node that has ``origin = true``; a queue node
with ``origin`` sends the caller back there (voice routing starts a new
interaction and task in it, and the queue's ``sticky_agent_seconds`` offers it
to the same agent first).

``TRANSFER_FAILED_SCRIPT`` (``agi://.../callwright-transfer-failed``): the
dialplan calls it when a flow's transfer did not connect (``DIALSTATUS`` not
``ANSWER``); the caller's flow run goes on at its transfer node's failure
branch (``IvrRunner.transfer_failed``), and a caller it queues returns to the
dialplan, which takes them to the holding point.

``SURVEY_SCRIPT`` (``agi://.../callwright-survey``) runs the post-call survey
of the calling channel (by its uniqueid): the dialplan calls it after the
agent hung up (``Dial`` option ``g``, ``DIALSTATUS`` ``ANSWER``).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Protocol

from cti.calls.model import Call
from ivr.agi.errors import AgiCommandError, AgiError, AgiHangup
from ivr.agi.server import AgiChannel
from ivr.model import (
    AwaitRecording,
    AwaitTransfer,
    CallInfo,
    Digits,
    Done,
    Enqueue,
    GatherDigits,
    Hangup,
    HungUp,
    Input,
    NoInput,
    PauseRecording,
    QueueNode,
    RecordingDone,
    ResumeRecording,
    Say,
    SetLanguage,
    TransferCompleted,
)
from ivr.runner import IvrRunner, Turn, UnknownFlow
from recordings.control import RecordingControlError

__all__ = ["SURVEY_SCRIPT", "TRANSFER_FAILED_SCRIPT", "FastAgiIvr"]

log = logging.getLogger(__name__)

SURVEY_SCRIPT = "callwright-survey"
TRANSFER_FAILED_SCRIPT = "callwright-transfer-failed"
KEYS = "0123456789*#"
QUEUE_VARIABLE = "CALLWRIGHT_QUEUE"
SESSION_VARIABLE = "CALLWRIGHT_IVR_SESSION"
TRANSFER_VARIABLE = "CALLWRIGHT_TRANSFER"
STATUS_VARIABLE = "CALLWRIGHT_IVR"
MAX_TURNS = 500


def _known(value: str) -> str:
    return "" if value in ("", "unknown") else value


class TrackedCalls(Protocol):
    """``cti.calls.service.CallService``: the calls the tracker knows."""

    def calls(self) -> list[Call]: ...


class RecordingHook(Protocol):
    """``recordings.control.RecordingControl``'s IVR hook."""

    async def pause_for(self, call_id: str, source: str = "ivr") -> dict[str, Any]: ...

    async def resume_for(self, call_id: str, source: str = "ivr") -> dict[str, Any]: ...


class CallInteractions(Protocol):
    """``crm.repository.InteractionRepository.by_call_id``."""

    async def by_call_id(self, call_id: str) -> Any: ...


class FastAgiIvr:
    """``handle`` is an ``AgiServer`` handler; ``voicemail_dir`` is where
    ``RECORD FILE`` writes (relative: Asterisk's sounds directory). ``calls``,
    ``recordings`` and ``interactions``: for a flow's recording pause/resume and
    ``origin`` queue (without them, a pause is logged and skipped and there is
    no origin queue)."""

    def __init__(
        self,
        runner: IvrRunner,
        *,
        voicemail_dir: str = "callwright/voicemail",
        transfer_context: str = "callwright-ivr-transfer",
        calls: TrackedCalls | None = None,
        recordings: RecordingHook | None = None,
        interactions: CallInteractions | None = None,
    ) -> None:
        self.runner = runner
        self.voicemail_dir = voicemail_dir.rstrip("/")
        self.transfer_context = transfer_context
        self.calls = calls
        self.recordings = recordings
        self.interactions = interactions

    def _call_id(self, uniqueid: str) -> str | None:
        """The tracked live call one of whose channels is ``uniqueid``."""
        if self.calls is None or not uniqueid:
            return None
        for call in self.calls.calls():
            if call.ended_at is None and any(ch.uniqueid == uniqueid for ch in call.channels):
                return call.id
        return None

    async def _origin_queue(self, script: str, uniqueid: str) -> str:
        """The queue of the call's latest interaction, for a flow that can go
        back there (a queue node with ``origin``); "" otherwise."""
        flow = self.runner.flows.get(script)
        if flow is None or self.interactions is None:
            return ""
        if not any(isinstance(n, QueueNode) and n.origin for n in flow.nodes.values()):
            return ""
        call_id = self._call_id(uniqueid)
        if call_id is None:
            return ""
        try:
            interaction = await self.interactions.by_call_id(call_id)
        except Exception:
            log.exception("IVR %s: the interaction of call %s not read", script, call_id)
            return ""
        queue = getattr(interaction, "queue", None)
        return queue if isinstance(queue, str) else ""

    async def handle(self, channel: AgiChannel) -> None:
        request = channel.request
        script = request.script.strip("/")
        try:
            if script == SURVEY_SCRIPT:
                turn = await self.runner.begin_survey("agi", request.uniqueid)
                if turn is None:
                    return
            elif script == TRANSFER_FAILED_SCRIPT:
                status = await channel.get_variable("DIALSTATUS")
                turn = await self.runner.transfer_failed(
                    "agi", request.uniqueid, status or "unknown"
                )
                if turn is None:
                    await self._give_up(channel, "Callwright: no IVR transfer to go back to")
                    return
            else:
                call = CallInfo(
                    caller_id=_known(request.callerid),
                    dialed=_known(request.extension) or _known(request.env.get("dnid", "")),
                    ref=request.uniqueid,
                    origin_queue=await self._origin_queue(script, request.uniqueid),
                )
                turn = await self.runner.begin("agi", script, call)
        except UnknownFlow:
            await self._give_up(channel, f"Callwright: no IVR flow named {script!r}")
            return
        except AgiError:
            raise
        except Exception:
            log.exception("IVR %s for %s: could not start", script, request.channel)
            await self._give_up(channel, "Callwright: the IVR could not start")
            return
        await self._run(channel, turn)

    async def _give_up(self, channel: AgiChannel, message: str) -> None:
        """Tell the console, mark the channel and let the dialplan queue the caller."""
        with contextlib.suppress(AgiError):
            await channel.verbose(message, 1)
            await channel.set_variable(STATUS_VARIABLE, "failed")

    async def _run(self, channel: AgiChannel, turn: Turn) -> None:
        for _ in range(MAX_TURNS):
            try:
                event = await self._perform(channel, turn)
            except AgiHangup:
                if not turn.done:
                    await self._feed(turn, HungUp())
                return
            except AgiError as exc:
                log.warning("IVR session %s: AGI failed (%s); caller queued", turn.session_id, exc)
                if not turn.done:
                    await self._feed(turn, HungUp())
                await self._give_up(channel, "Callwright: the IVR failed")
                return
            if event is None:
                return
            next_turn = await self._feed(turn, event)
            if next_turn is None:
                await self._give_up(channel, "Callwright: the IVR failed")
                return
            turn = next_turn
        log.error("IVR session %s: too many turns; caller queued", turn.session_id)
        await self._give_up(channel, "Callwright: the IVR went round in circles")

    async def _feed(self, turn: Turn, event: Input) -> Turn | None:
        try:
            return await self.runner.feed(turn, event)
        except Exception:
            log.exception("IVR session %s: storing the step failed", turn.session_id)
            return None

    async def _perform(self, channel: AgiChannel, turn: Turn) -> Input | None:
        """Render the turn's actions and its wait; the caller's answer, or None
        when the session is over (the AGI returns to the dialplan)."""
        for action in turn.actions:
            if isinstance(action, Say):
                await self._say(channel, action, "")
            elif isinstance(action, SetLanguage):
                await channel.set_variable("CHANNEL(language)", action.language)
            elif isinstance(action, Enqueue):
                await channel.set_variable(QUEUE_VARIABLE, action.task.queue)
                await channel.set_variable(SESSION_VARIABLE, turn.session_id)
            elif isinstance(action, PauseRecording | ResumeRecording):
                await self._recording(channel, turn, pause=isinstance(action, PauseRecording))
            elif isinstance(action, Hangup):
                if isinstance(turn.wait, Done) and turn.wait.outcome == "transferred":
                    continue  # the caller goes on to the transfer context
                await channel.hangup()
        wait = turn.wait
        if isinstance(wait, Done):
            with contextlib.suppress(AgiError):  # the caller may be gone after HANGUP
                await channel.set_variable(STATUS_VARIABLE, wait.outcome)
            return None
        if isinstance(wait, GatherDigits):
            return await self._gather(channel, wait)
        if isinstance(wait, AwaitRecording):
            return await self._record(channel, turn, wait)
        if isinstance(wait, AwaitTransfer):
            # The dialplan dials it once the AGI returns: SET CONTEXT/EXTENSION/
            # PRIORITY move the channel (ast_explicit_goto: it resumes at priority 1).
            await channel.set_variable(TRANSFER_VARIABLE, wait.number)
            await channel.set_variable("CALLWRIGHT_TRANSFER_TIMEOUT", str(wait.timeout))
            await channel.command("SET CONTEXT", self.transfer_context)
            await channel.command("SET EXTENSION", wait.number)
            await channel.command("SET PRIORITY", "1")
            return TransferCompleted()
        raise RuntimeError(f"IVR: the runner left a {type(wait).__name__} wait")

    async def _recording(self, channel: AgiChannel, turn: Turn, *, pause: bool) -> None:
        """Pause or resume the call's recording; never stops the flow."""
        verb = "paused" if pause else "resumed"
        session = turn.session_id
        if self.recordings is None:
            log.info("IVR session %s: no recording control; recording not %s", session, verb)
            return
        call_id = self._call_id(channel.request.uniqueid)
        if call_id is None:
            log.info(
                "IVR session %s: no tracked call for channel %s; recording not %s",
                session,
                channel.request.channel,
                verb,
            )
            return
        try:
            if pause:
                await self.recordings.pause_for(call_id, source="ivr")
            else:
                await self.recordings.resume_for(call_id, source="ivr")
        except RecordingControlError as exc:
            log.info("IVR session %s: recording of call %s not %s: %s", session, call_id, verb, exc)
            return
        except Exception as exc:  # Asterisk refused, the link is down
            log.warning(
                "IVR session %s: recording of call %s not %s: %s", session, call_id, verb, exc
            )
            return
        log.info("IVR session %s: recording of call %s %s", session, call_id, verb)

    async def _say(self, channel: AgiChannel, say: Say, escape: str) -> str | None:
        """Play a prompt; the key that interrupted it, if any."""
        if not say.sound:
            await channel.verbose(f"IVR ({say.language}): {say.text}", 3)
            return None
        try:
            return await channel.stream_file(say.sound, escape)
        except AgiHangup:
            raise
        except AgiCommandError as exc:  # a missing sound file: go on without it
            log.warning("IVR prompt %r not played: %s", say.sound, exc)
            return None

    async def _gather(self, channel: AgiChannel, wait: GatherDigits) -> Input:
        digits = ""
        for say in wait.prompts:
            key = await self._say(channel, say, KEYS)
            if key is not None:
                digits = key
                break
        timeout_ms = max(int(wait.timeout * 1000), 1)
        while not (wait.finish_on_key and digits.endswith(wait.finish_on_key)):
            if len(digits) >= wait.max_digits:
                break
            key = await channel.wait_for_digit(timeout_ms)
            if key is None:
                break
            digits += key
        if wait.finish_on_key and digits.endswith(wait.finish_on_key):
            digits = digits[: -len(wait.finish_on_key)]
            if not digits:
                return Digits(wait.finish_on_key)  # the finish key alone: garbage
        return Digits(digits) if digits else NoInput()

    async def _record(self, channel: AgiChannel, turn: Turn, wait: AwaitRecording) -> Input:
        for say in wait.prompts:
            await self._say(channel, say, "")
        name = f"{self.voicemail_dir}/{turn.session_id}"
        finish = wait.finish_on_key or "#"
        reply = await channel.command(
            "RECORD FILE", name, "wav", finish, str(wait.max_seconds * 1000), "BEEP"
        )
        if reply.code != 200:
            raise AgiCommandError("RECORD FILE", reply)
        seconds = max(reply.endpos or 0, 0) / 8000  # 8 kHz samples
        if reply.hungup or reply.result == "-1":
            return RecordingDone(f"{name}.wav" if seconds else "", seconds, hung_up=True)
        return RecordingDone(f"{name}.wav", seconds)
