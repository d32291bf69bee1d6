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
                       session ends ``transferred``; a failed Dial hangs up
                       there, the flow's ``failure`` branch is not taken
``Hangup``             ``HANGUP``
``Done``               ``SET VARIABLE CALLWRIGHT_IVR <outcome>``; ``failed``
                       returns to the dialplan, which queues the caller in the
                       default queue (never silence)
=====================  ======================================================

An unknown flow or a store failure: ``VERBOSE`` a message, ``CALLWRIGHT_IVR``
``failed``, return (the caller is queued in the default queue). The caller
hanging up (``AgiHangup``: the HANGUP line, a 511 reply, the connection
closing) ends the session ``abandoned`` at the node it was waiting in.

``SURVEY_SCRIPT`` (``agi://.../callwright-survey``) runs the post-call survey
of the calling channel (by its uniqueid): the dialplan calls it after the
agent hung up (``Dial`` option ``g``, ``DIALSTATUS`` ``ANSWER``).
"""

from __future__ import annotations

import contextlib
import logging

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
    RecordingDone,
    Say,
    SetLanguage,
    TransferCompleted,
)
from ivr.runner import IvrRunner, Turn, UnknownFlow

__all__ = ["SURVEY_SCRIPT", "FastAgiIvr"]

log = logging.getLogger(__name__)

SURVEY_SCRIPT = "callwright-survey"
KEYS = "0123456789*#"
QUEUE_VARIABLE = "CALLWRIGHT_QUEUE"
SESSION_VARIABLE = "CALLWRIGHT_IVR_SESSION"
TRANSFER_VARIABLE = "CALLWRIGHT_TRANSFER"
STATUS_VARIABLE = "CALLWRIGHT_IVR"
MAX_TURNS = 500


def _known(value: str) -> str:
    return "" if value in ("", "unknown") else value


class FastAgiIvr:
    """``handle`` is an ``AgiServer`` handler; ``voicemail_dir`` is where
    ``RECORD FILE`` writes (relative: Asterisk's sounds directory)."""

    def __init__(
        self,
        runner: IvrRunner,
        *,
        voicemail_dir: str = "callwright/voicemail",
        transfer_context: str = "callwright-ivr-transfer",
    ) -> None:
        self.runner = runner
        self.voicemail_dir = voicemail_dir.rstrip("/")
        self.transfer_context = transfer_context

    async def handle(self, channel: AgiChannel) -> None:
        request = channel.request
        script = request.script.strip("/")
        call = CallInfo(
            caller_id=_known(request.callerid),
            dialed=_known(request.extension) or _known(request.env.get("dnid", "")),
            ref=request.uniqueid,
        )
        try:
            if script == SURVEY_SCRIPT:
                turn = await self.runner.begin_survey("agi", request.uniqueid)
                if turn is None:
                    return
            else:
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
