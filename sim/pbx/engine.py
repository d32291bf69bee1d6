"""The simulated Asterisk core: channels running dialplan, Local channel
pairs, Dial, bridges, hangup propagation, transfers, MixMonitor.

Each channel that runs dialplan has its own asyncio task (Asterisk's PBX
thread). Events are emitted synchronously through ``emit(name, class,
headers)``; the AMI layer fans them out. The event sequences per channel follow
the Asterisk 22.10.1 recordings in ``tests/fixtures/ami/``; the rules that
produce them are written next to the code that applies them:

* a channel whose PBX ends emits ``SoftHangupRequest`` (Cause 16, i.e.
  AST_SOFTHANGUP_APPUNLOAD) and then hangs up; a channel with no PBX (a dialed
  leg, an originate application channel) hangs up without it;
* hanging up one half of a Local channel queues a hangup on the other half
  (``HangupRequest`` with the first half's cause);
* when one party of a two-party bridge leaves (hangup, single Redirect,
  transfer), the bridge dissolves: the others are kicked out; a kicked channel
  with no PBX hangs up (cause 16), a kicked channel running Dial ends its
  dialplan there (SoftHangupRequest, Hangup) unless Dial had option g;
* a Redirect lands on the given priority; a blind-transferred channel that
  was running Dial lands on priority 2 of the target (06-transfers.txt).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from sim.pbx.dialplan import Dialplan, agi_target, evaluate
from sim.pbx.model import (
    Bridge,
    MixMonitorRec,
    SimChannel,
    SpySession,
    bridge_headers,
    cause_text,
    channel_headers,
)
from sim.pbx.recording import WavRecorder, option_flags, spool_path

__all__ = ["DeviceConfig", "Pbx"]

log = logging.getLogger(__name__)

Header = tuple[str, str]
Emit = Callable[[str, str, list[Header]], None]

CONTINUE = "continue"
HANGUP = "hangup"
Outcome = str | tuple[str, str, int]

RECORDING_TICK = 0.1  # seconds between two writes of a running MixMonitor
ATXFER_CODE = "*2"
ATXFER_ABORT_CODE = "*1"
ORIGINATE_LATENCY = 0.01
UP = 6
RING = 4
RINGING = 5
DOWN = 0


@dataclass(slots=True)
class DeviceConfig:
    """How a phone (an agent's PJSIP endpoint, or an external number reached
    over the trunk) behaves when called."""

    auto_answer: bool = True
    reachable: bool = True
    busy: bool = False


@dataclass(eq=False)
class _Outgoing:
    """A dialed leg while Dial() waits for it."""

    chan: SimChannel
    owner: SimChannel | None  # the channel running Dial (None: originate)
    status: str | None = None  # ANSWER, BUSY, CHANUNAVAIL, NOANSWER, CANCEL
    dialstring: str = ""


@dataclass(eq=False)
class _Atxfer:
    transferer: SimChannel
    transferee_bridge: Bridge
    consult_bridge: Bridge | None
    target_one: SimChannel  # Local/<exten>@<context>;1
    target_two: SimChannel
    context: str
    exten: str


class Pbx:
    def __init__(
        self,
        emit: Emit,
        *,
        dialplan: Dialplan,
        endpoints: Iterable[str],
        answer_delay: float,
        agi_url: str | None,
        spool_dir: str | None,
    ) -> None:
        self._emit = emit
        self.dialplan = dialplan
        self.endpoints: set[str] = set(endpoints)
        self.devices: dict[str, DeviceConfig] = {d: DeviceConfig() for d in self.endpoints}
        self.answer_delay = answer_delay
        self.agi_url = agi_url
        # Asterisk's astspooldir: MixMonitor writes real WAV files under its
        # monitor/ folder (sim/pbx/recording.py); None: no files.
        self.spool_dir = spool_dir
        self.channels: dict[str, SimChannel] = {}
        # The live channels of each device, by name: a device's state is asked
        # at every change of one of its channels, and a scan of every channel
        # each time was 40% of the simulator's time at 50 calls/s with 1,000
        # agents (bench/RESULTS.md, "Sixth round").
        self._device_channels: dict[str, dict[str, SimChannel]] = {}
        self.bridges: dict[str, Bridge] = {}
        self.globals: dict[str, str] = {}
        self.processed_calls = 0
        self.started = time.time()
        self._chan_seq = 0
        self._uniq_seq = 0
        self._mixmon_seq = 0x7F00_0000_1000
        self._tasks: set[asyncio.Task[Any]] = set()
        self._outgoing: dict[SimChannel, _Outgoing] = {}
        self._atxfers: dict[SimChannel, _Atxfer] = {}
        # ChanSpy() sessions in progress, by spying channel.
        self.spy_sessions: dict[SimChannel, SpySession] = {}
        self.changed = asyncio.Event()
        self.closing = False
        # How long after its reply an async Originate creates its channels.
        self.originate_latency = ORIGINATE_LATENCY
        # Scales the durations of Wait(), MusicOnHold() and AGI digit timeouts
        # (fast transcript replays).
        self.time_scale = 1.0
        # Where AGI() connects instead of the host:port of its URL (tests);
        # the agi_* block still names the URL.
        self.agi_address: tuple[str, int] | None = None
        # Share of AttendedTransfer events without TransferTarget* headers
        # (a race in Asterisk 22.10.1; PbxSimulator(transfer_target_missing=)).
        self.transfer_target_missing = 0.0
        self._random = random.Random()

    # ------------------------------------------------------------------ basics

    def seed_counters(self, *, channel_seq: int, uniqueid_seq: int) -> None:
        """Start channel-name and Uniqueid counters at these values (replaying
        a transcript recorded on an Asterisk that had already made calls)."""
        self._chan_seq = channel_seq
        self._uniq_seq = uniqueid_seq

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task failed", exc_info=task.exception())

    async def shutdown(self) -> None:
        self.closing = True
        self.close_recordings()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def _seq(self) -> str:
        seq = self._chan_seq
        self._chan_seq += 1
        return f"{seq:08x}"

    def _uniqueid(self) -> str:
        seq = self._uniq_seq
        self._uniq_seq += 1
        return f"{int(time.time())}.{seq}"

    def find(self, name: str) -> SimChannel | None:
        """By name, else by Uniqueid (Asterisk's ast_channel_get_by_name)."""
        found = self.channels.get(name)
        if found is None and name:
            found = next((c for c in self.channels.values() if c.uniqueid == name), None)
        return found

    def find_prefix(self, prefix: str) -> SimChannel | None:
        exact = self.channels.get(prefix)
        if exact is not None:
            return exact
        for name, chan in self.channels.items():
            if name.startswith(prefix):
                return chan
        return None

    # ------------------------------------------------------------------ events

    def ev(self, name: str, cls: str, headers: list[Header]) -> None:
        self._emit(name, cls, headers)
        self.changed.set()

    def ev_chan(
        self, name: str, ch: SimChannel, extra: Iterable[Header] = (), cls: str = "call"
    ) -> None:
        self.ev(name, cls, [*channel_headers(ch), *extra])

    def _newexten(self, ch: SimChannel) -> None:
        ch.shown_cep = (ch.context, ch.exten, ch.priority)
        self.ev_chan(
            "Newexten",
            ch,
            [("Extension", ch.exten), ("Application", ch.application), ("AppData", ch.app_data)],
            cls="dialplan",
        )

    def set_var(self, ch: SimChannel | None, name: str, value: str, *, emit: bool = True) -> None:
        if ch is None:
            self.globals[name] = value
            return
        ch.variables[name] = value
        if emit:
            self.ev_chan("VarSet", ch, [("Variable", name), ("Value", value)], cls="dialplan")

    def get_var(self, ch: SimChannel | None, name: str) -> str:
        if ch is None:
            return self.globals.get(name, "")
        upper = name.upper()
        builtin = {
            "CHANNEL": ch.name,
            "EXTEN": ch.exten,
            "CONTEXT": ch.context,
            "PRIORITY": str(ch.priority),
            "UNIQUEID": ch.uniqueid,
            "LINKEDID": ch.linkedid,
            "CALLERID(NUM)": ch.caller_num or "",
            "CALLERID(NAME)": ch.caller_name or "",
            "CALLERID(ALL)": _format_cid(ch.caller_name, ch.caller_num),
            "CONNECTEDLINE(NUM)": ch.connected_num or "",
            "CONNECTEDLINE(NAME)": ch.connected_name or "",
            "CHANNEL(STATE)": ch.state,
            "CHANNEL(NAME)": ch.name,
            "CHANNEL(UNIQUEID)": ch.uniqueid,
            "CHANNEL(LINKEDID)": ch.linkedid,
            "DNID": ch.dnid,
        }
        if upper in builtin:
            return builtin[upper]
        if name in ch.variables:
            return ch.variables[name]
        return self.globals.get(name, "")

    def _state(self, ch: SimChannel, state: int) -> None:
        if ch.state_code == state:
            return
        ch.state_code = state
        self.ev_chan("Newstate", ch)
        self._device_state(ch)

    def _device_state(self, ch: SimChannel) -> None:
        if ch.tech != "PJSIP" or ch.device is None or ch.device == "trunk":
            return
        self.ev(
            "DeviceStateChange",
            "call",
            [("Device", f"PJSIP/{ch.device}"), ("State", self.device_state(ch.device))],
        )

    def device_state(self, device: str) -> str:
        config = self.devices.get(device)
        if config is not None and not config.reachable:
            return "UNAVAILABLE"
        states = [c.state_code for c in self.channels_of_device(device)]
        if any(s == UP for s in states):
            return "INUSE"
        if any(s == RINGING for s in states):
            return "RINGING"
        if states:
            return "INUSE"
        return "NOT_INUSE"

    # -------------------------------------------------------------- channels

    def _register(self, ch: SimChannel) -> SimChannel:
        self.channels[ch.name] = ch
        if ch.device is not None:
            self._device_channels.setdefault(ch.device, {})[ch.name] = ch
        self.processed_calls += 1
        self.ev_chan("Newchannel", ch)
        return ch

    def new_local_pair(
        self,
        exten: str,
        context: str,
        *,
        linkedid: str | None = None,
        ids: tuple[str | None, str | None] = (None, None),
    ) -> tuple[SimChannel, SimChannel]:
        base = f"Local/{exten}@{context}-{self._seq()}"
        u1, u2 = self._uniqueid(), self._uniqueid()
        if ids[0]:
            u1 = ids[0]
            u2 = ids[1] or f"{ids[0]};2"
        elif ids[1]:
            u2 = ids[1]
        link = linkedid or u1
        one = SimChannel(
            name=f"{base};1",
            uniqueid=u1,
            linkedid=link,
            tech="Local",
            state_code=DOWN,
            context=context,
            exten=exten,
            is_local_one=True,
        )
        two = SimChannel(
            name=f"{base};2",
            uniqueid=u2,
            linkedid=link,
            tech="Local",
            state_code=RING,
            context=context,
            exten=exten,
        )
        one.peer, two.peer = two, one
        self._register(one)
        self._register(two)
        return one, two

    def new_pjsip(
        self,
        endpoint: str,
        *,
        state: int,
        context: str,
        exten: str,
        linkedid: str | None = None,
        uniqueid: str | None = None,
        caller: tuple[str | None, str | None] = (None, None),
    ) -> SimChannel:
        uid = uniqueid or self._uniqueid()
        if uniqueid:
            self._uniq_seq += 1
        ch = SimChannel(
            name=f"PJSIP/{endpoint}-{self._seq()}",
            uniqueid=uid,
            linkedid=linkedid or uid,
            tech="PJSIP",
            state_code=state,
            context=context,
            exten=exten,
            device=endpoint,
            caller_num=caller[0],
            caller_name=caller[1],
        )
        self._register(ch)
        self._device_state(ch)
        return ch

    def _set_callerid(self, ch: SimChannel, num: str | None, name: str | None) -> None:
        ch.caller_num, ch.caller_name = num, name
        self.ev_chan("NewCallerid", ch, [("CID-CallingPres", _presentation(ch))])

    def _set_connected(self, ch: SimChannel, num: str | None, name: str | None) -> None:
        ch.connected_num, ch.connected_name = num, name
        self.ev_chan("NewConnectedLine", ch)

    def _local_bridge(self, one: SimChannel, two: SimChannel, optimize: bool) -> None:
        self.ev(
            "LocalBridge",
            "call",
            [
                *channel_headers(one, "LocalOne"),
                *channel_headers(two, "LocalTwo"),
                ("Context", two.context),
                ("Exten", two.exten),
                ("LocalOptimization", "Yes" if optimize else "No"),
            ],
        )

    def _dial_begin(self, caller: SimChannel | None, dest: SimChannel, dialstring: str) -> None:
        head = channel_headers(caller) if caller is not None else []
        self.ev(
            "DialBegin", "call", [*head, *channel_headers(dest, "Dest"), ("DialString", dialstring)]
        )

    def _dial_end(self, caller: SimChannel | None, dest: SimChannel, status: str) -> None:
        head = channel_headers(caller) if caller is not None else []
        self.ev("DialEnd", "call", [*head, *channel_headers(dest, "Dest"), ("DialStatus", status)])

    # ------------------------------------------------------------ answering

    def answer(self, ch: SimChannel) -> None:
        """The channel goes Up; a Local ;2 answering answers its ;1 too."""
        if ch.state_code == UP or ch.hungup:
            return
        self._state(ch, UP)
        if ch.tech == "Local" and not ch.is_local_one and ch.peer is not None:
            self._state(ch.peer, UP)
            self._outgoing_answered(ch.peer)
        self._outgoing_answered(ch)

    def _outgoing_answered(self, ch: SimChannel) -> None:
        out = self._outgoing.get(ch)
        if out is not None and out.status is None:
            out.status = "ANSWER"
            if out.owner is not None:
                out.owner.wake()
        ch.answer_event.set()

    def _outgoing_failed(self, ch: SimChannel, status: str) -> None:
        out = self._outgoing.get(ch)
        if out is not None and out.status is None:
            out.status = status
            if out.owner is not None:
                out.owner.wake()
        ch.answer_event.set()

    # ------------------------------------------------------------- the PBX

    def start_pbx(self, ch: SimChannel, context: str, exten: str, priority: int) -> None:
        ch.context, ch.exten, ch.priority = context, exten, priority
        ch.has_pbx = True
        ch.kicked = False
        ch.task = self.spawn(self._pbx_run(ch))

    async def _pbx_run(self, ch: SimChannel) -> None:
        try:
            while not ch.hungup and not ch.hangup_requested:
                step = self.dialplan.step(ch.context, ch.exten, ch.priority)
                if step is None:
                    break
                if (
                    step.app == "AGI"
                    and self.dialplan.name == "callwright"
                    and self.agi_url is None
                ):
                    ch.priority += 1
                    continue
                data = evaluate(step.data, lambda name: self.get_var(ch, name))
                if step.app == "AGI" and self.dialplan.name == "callwright" and self.agi_url:
                    data = agi_target(
                        self.agi_url, data, inbound=ch.context == "callwright-inbound"
                    )
                ch.application, ch.app_data = step.app, data
                if ch.shown_cep != (ch.context, ch.exten, ch.priority):
                    self._newexten(ch)
                outcome = await self._run_app(ch, step.app, data)
                if ch.hungup or ch.yanked:
                    return
                if ch.async_goto is not None:
                    ch.context, ch.exten, ch.priority = ch.async_goto
                    ch.async_goto = None
                    ch.kicked = False
                    await asyncio.sleep(0)
                    continue
                if outcome == HANGUP or ch.hangup_requested:
                    break
                if isinstance(outcome, tuple):
                    ch.context, ch.exten, ch.priority = outcome
                else:
                    ch.priority += 1
                ch.kicked = False
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dialplan of %s failed", ch.name)
        if ch.yanked:
            return
        self._pbx_end(ch)

    def _pbx_end(self, ch: SimChannel) -> None:
        if ch.hungup:
            return
        ch.has_pbx = False
        ch.task = None
        self.ev_chan("SoftHangupRequest", ch, [("Cause", "16")])
        self.hangup(ch)

    async def _run_app(self, ch: SimChannel, app: str, data: str) -> Outcome:
        handler = getattr(self, f"_app_{app.lower()}", None)
        if handler is None:
            log.warning("application %s is not simulated; skipped", app)
            return CONTINUE
        result: Outcome = await handler(ch, data)
        return result

    # -------------------------------------------------------- applications

    async def _app_noop(self, ch: SimChannel, data: str) -> Outcome:
        return CONTINUE

    async def _app_answer(self, ch: SimChannel, data: str) -> Outcome:
        self.answer(ch)
        return CONTINUE

    async def _app_wait(self, ch: SimChannel, data: str) -> Outcome:
        await ch.wait(_float(data, 0.0) * self.time_scale)
        return CONTINUE

    async def _app_hangup(self, ch: SimChannel, data: str) -> Outcome:
        cause = int(data) if data.strip().isdigit() else 16
        if ch.hangup_cause == 0:
            ch.hangup_cause = cause
        return HANGUP

    async def _app_set(self, ch: SimChannel, data: str) -> Outcome:
        name, _, value = data.partition("=")
        upper = name.strip().upper()
        if upper == "CALLERID(ALL)":
            cid_name, cid_num = _parse_cid(value)
            self._set_callerid(ch, cid_num, cid_name)
        elif upper == "CALLERID(NUM)":
            self._set_callerid(ch, value, ch.caller_name)
        elif upper == "CALLERID(NAME)":
            self._set_callerid(ch, ch.caller_num, value)
        else:
            self.set_var(ch, name.strip(), value)
        return CONTINUE

    async def _app_goto(self, ch: SimChannel, data: str) -> Outcome:
        return self._goto_target(ch, data) or CONTINUE

    async def _app_gotoif(self, ch: SimChannel, data: str) -> Outcome:
        cond, _, targets = data.partition("?")
        if_true, _, if_false = targets.partition(":")
        truthy = cond.strip() not in ("", "0")
        target = if_true if truthy else if_false
        if not target:
            return CONTINUE
        return self._goto_target(ch, target) or CONTINUE

    def _goto_target(self, ch: SimChannel, target: str) -> tuple[str, str, int] | None:
        parts = [p.strip() for p in target.split(",")]
        context, exten = ch.context, ch.exten
        if len(parts) == 3:
            context, exten, prio = parts
        elif len(parts) == 2:
            exten, prio = parts
        else:
            prio = parts[0]
        if prio.isdigit():
            return context, exten, int(prio)
        found = self.dialplan.label(context, exten, prio)
        if found is None:
            return None
        return context, exten, found

    async def _app_musiconhold(self, ch: SimChannel, data: str) -> Outcome:
        moh_class, _, duration = data.partition(",")
        self.moh_start(ch, moh_class or "default")
        await ch.wait(_float(duration, 0.0) * self.time_scale or None)
        self.moh_stop(ch)
        return CONTINUE

    def moh_start(self, ch: SimChannel, moh_class: str = "default") -> None:
        if ch.moh_class is not None:
            return
        ch.moh_class = moh_class
        self.ev_chan("MusicOnHoldStart", ch, [("Class", moh_class)])

    def moh_stop(self, ch: SimChannel) -> None:
        if ch.moh_class is None:
            return
        ch.moh_class = None
        self.ev_chan("MusicOnHoldStop", ch)

    async def _app_queue(self, ch: SimChannel, data: str) -> Outcome:
        log.warning("Queue() is not simulated; %s waits", ch.name)
        await ch.wait(None)
        return CONTINUE

    async def _app_mixmonitor(self, ch: SimChannel, data: str) -> Outcome:
        file, _, options = data.partition(",")
        self.mixmonitor_start(ch, file, options)
        return CONTINUE

    async def _app_stopmixmonitor(self, ch: SimChannel, data: str) -> Outcome:
        self.mixmonitor_stop(ch, data or None)
        return CONTINUE

    async def _app_chanspy(self, ch: SimChannel, data: str) -> Outcome:
        """ChanSpy(chanprefix,options), after app_chanspy.c (Asterisk 22):
        waits 100 ms for a digit, then spies on the first matching channel
        that is neither hung up nor spying itself (option u: the exact channel
        name or Uniqueid, and leave at once if there is none; b: bridged ones
        only). ChanSpyStart and ChanSpyStop name spyer and spyee (22 has
        the spyee in ChanSpyStop since ASTERISK-28883). The session ends when
        either side hangs up; then option E leaves the application, S leaves
        when no channel is left, else it scans again. No audio: the mode is
        in ``spy_sessions`` (w/W whisper, B barge)."""
        spec, _, options = data.partition(",")
        spec = "" if spec.strip() == "all" else spec.strip()
        letters = re.sub(r"\([^)]*\)", "", options)
        if ch.state_code != UP:
            self.answer(ch)
        ch.spying = True
        try:
            while True:
                if await ch.wait(0.1 * self.time_scale):
                    return HANGUP
                if "u" in letters and spec:
                    target = self.find(spec)
                    if target is None:
                        return HANGUP  # res = -1: nothing to spy on
                    candidates = [target]
                else:
                    candidates = [
                        c
                        for name, c in self.channels.items()
                        if name.startswith(spec) and c is not ch
                    ]
                spied = False
                for target in candidates:
                    if target.hungup or target.spying or target is ch:
                        continue
                    if "b" in letters and target.bridge is None:
                        continue
                    spied = True
                    await self._spy_on(ch, target, letters)
                    if ch.hungup or ch.hangup_requested:
                        return HANGUP
                    if "E" in letters:
                        return CONTINUE
                    break
                if not spied and "S" in letters:
                    return CONTINUE
        finally:
            ch.spying = False

    async def _spy_on(self, ch: SimChannel, target: SimChannel, letters: str) -> None:
        mode = (
            "barge"
            if "B" in letters
            else "whisper"
            if ("w" in letters or "W" in letters)
            else "listen"
        )
        self.ev(
            "ChanSpyStart",
            "call",
            [*channel_headers(ch, "Spyer"), *channel_headers(target, "Spyee")],
        )
        session = SpySession(ch, target, mode, letters)
        self.spy_sessions[ch] = session
        try:
            while self.spy_sessions.get(ch) is session and not ch.interrupted:
                await ch.wait(None)
        finally:
            self._end_spy(session)

    def _end_spy(self, session: SpySession) -> None:
        """ChanSpyStop, with both snapshots: app_chanspy publishes it while its
        autochan still holds the spyee, so a spyee that hangs up is destroyed
        (its Hangup event sent) only after it."""
        spyer = session.spyer
        if self.spy_sessions.get(spyer) is not session:
            return
        del self.spy_sessions[spyer]
        self.ev(
            "ChanSpyStop",
            "call",
            [*channel_headers(spyer, "Spyer"), *channel_headers(session.spyee, "Spyee")],
        )
        spyer.wake()

    async def _app_agi(self, ch: SimChannel, data: str) -> Outcome:
        from sim.pbx.agi import run_agi

        return await run_agi(self, ch, data)

    # ------------------------------------------------------------------ Dial

    async def _app_dial(self, ch: SimChannel, data: str) -> Outcome:
        args = data.split(",")
        timeout = _float(args[1], 0.0) if len(args) > 1 else 0.0
        # app_dial clears its result variables first (and the *TIME ones,
        # not simulated).
        for name in ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME"):
            self.set_var(ch, name, "")
        outs: list[_Outgoing] = []
        for target in args[0].split("&"):
            out = self._dial_target(ch, target.strip())
            if out is not None:
                outs.append(out)
        if not outs:
            self.set_var(ch, "DIALSTATUS", "CHANUNAVAIL")
            return CONTINUE
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout > 0 else None
        winner: _Outgoing | None = None
        while True:
            winner = next((o for o in outs if o.status == "ANSWER"), None)
            if winner is not None or all(o.status is not None for o in outs) or ch.interrupted:
                break
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            await ch.wait(remaining)
        for out in outs:
            if out is winner or out.status is not None:
                continue
            out.status = "CANCEL" if ch.interrupted else "NOANSWER"
            self._dial_end(ch, out.chan, out.status)
            self._hangup_no_pbx(out.chan, 16 if ch.interrupted else 0)
        for out in outs:
            self._outgoing.pop(out.chan, None)
        if winner is None:
            self.set_var(ch, "DIALSTATUS", _dial_status(outs, ch.interrupted))
            return HANGUP if ch.hangup_requested else CONTINUE
        peer = winner.chan
        self.set_var(ch, "DIALSTATUS", "ANSWER")
        self.set_var(ch, "DIALEDPEERNAME", peer.name)
        self.set_var(ch, "DIALEDPEERNUMBER", winner.dialstring)
        if ch.interrupted or peer.hungup:
            self._dial_end(ch, peer, "ANSWER")
            return HANGUP if ch.hangup_requested else CONTINUE
        options = args[2] if len(args) > 2 else ""
        if "T" in options:
            ch.can_transfer = True
        if "t" in options:
            peer.can_transfer = True
        peer.exten = ""
        self._dial_end(ch, peer, "ANSWER")
        # ast_bridge_call answers the calling channel if it is not up yet
        # (a Local ;2 then answers its ;1).
        self.answer(ch)
        bridge = self.new_bridge()
        self._newexten(peer)
        self.bridge_enter(bridge, peer)
        self.bridge_enter(bridge, ch)
        while ch.bridge is bridge and not ch.interrupted:
            await ch.wait(None)
        if ch.bridge is bridge:
            self.bridge_leave(ch)
        if not ch.yanked and not ch.hungup:
            self.set_var(ch, "DIALSTATUS", "ANSWER")
        if ch.hangup_requested or (ch.async_goto is None and "g" not in options):
            # The bridge ended (the callee hung up): without option g Dial
            # ends the caller's dialplan here, the next priority does not
            # run (tests/fixtures/ami-real/08-click-to-dial.txt).
            if ch.hangup_cause == 0:
                ch.hangup_cause = peer.hangup_cause or 16
            return HANGUP
        return CONTINUE

    def _dial_target(self, caller: SimChannel, target: str) -> _Outgoing | None:
        tech, _, resource = target.partition("/")
        if tech == "Local":
            return self._dial_local(caller, resource)
        if tech == "PJSIP":
            return self._dial_pjsip(caller, resource)
        log.warning("Dial(%s): technology %s is not simulated", target, tech)
        return None

    def _dial_local(self, caller: SimChannel | None, resource: str) -> _Outgoing | None:
        spec, _, flags = resource.partition("/")
        exten, _, context = spec.partition("@")
        context = context or "default"
        linkedid = caller.linkedid if caller is not None else None
        one, two = self.new_local_pair(exten, context, linkedid=linkedid)
        out = _Outgoing(one, caller, dialstring=resource)
        self._outgoing[one] = out
        self.set_var(one, "DIALEDPEERNUMBER", resource)
        one.application, one.app_data = "AppDial", "(Outgoing Line)"
        if caller is not None:
            one.exten = caller.exten  # app_dial: "Inherit context and extension"
            # Dial gives the outgoing channel the caller's extension as number
            # and the caller's connected name (04, 06).
            one.caller_num, one.caller_name = caller.exten, caller.connected_name
            one.connected_num, one.connected_name = caller.caller_num, caller.caller_name
        self._newexten(one)
        if caller is not None:
            self._set_callerid(one, one.caller_num, one.caller_name)
            self._set_connected(one, one.connected_num, one.connected_name)
            self.set_var(two, "DIALEDPEERNUMBER", resource)
            two.caller_num, two.caller_name = one.connected_num, one.connected_name
            two.connected_num, two.connected_name = one.caller_num, one.caller_name
            self._set_callerid(two, two.caller_num, two.caller_name)
            self._set_connected(two, two.connected_num, two.connected_name)
        if not self.dialplan.exists(context, exten):
            self._local_call_failed(one, two)
            out.status = "CHANUNAVAIL"
            return out
        self._local_bridge(one, two, optimize="n" not in flags)
        self._dial_begin(caller, one, resource)
        self.start_pbx(two, context, exten, 1)
        return out

    def _local_call_failed(self, one: SimChannel, two: SimChannel) -> None:
        for ch in (two, one):
            ch.peer = None
            self.hangup(ch)

    def _dial_pjsip(self, caller: SimChannel | None, resource: str) -> _Outgoing | None:
        number, _, host = resource.partition("@")
        if host:
            endpoint, device_key = host, number
            context = self.dialplan.trunk_context
        else:
            endpoint, device_key = number, number
            context = self.dialplan.device_context
            if number not in self.endpoints:
                log.info("Dial(PJSIP/%s): no such endpoint", number)
                return None
        linkedid = caller.linkedid if caller is not None else None
        chan = self.new_pjsip(endpoint, state=DOWN, context=context, exten="s", linkedid=linkedid)
        out = _Outgoing(chan, caller, dialstring=resource)
        self._outgoing[chan] = out
        self.set_var(chan, "DIALEDPEERNUMBER", resource)
        chan.application, chan.app_data = "AppDial", "(Outgoing Line)"
        if caller is not None:
            chan.exten = caller.exten
            chan.caller_num, chan.caller_name = caller.exten, caller.connected_name
            chan.connected_num, chan.connected_name = caller.caller_num, caller.caller_name
        self._newexten(chan)
        if caller is not None:
            self._set_callerid(chan, chan.caller_num, chan.caller_name)
            self._set_connected(chan, chan.connected_num, chan.connected_name)
        self._dial_begin(caller, chan, resource)
        self.spawn(self._ring(chan, device_key))
        return out

    async def _ring(self, chan: SimChannel, device_key: str) -> None:
        """The far end of an outgoing PJSIP leg: rings, then answers (after
        ``answer_delay``), or is busy / unreachable."""
        config = self.devices.get(device_key, DeviceConfig())
        await asyncio.sleep(0)
        if chan.hungup:
            return
        if not config.reachable:
            self._fail_outgoing(chan, "CHANUNAVAIL", 20)
            return
        if config.busy:
            self._fail_outgoing(chan, "BUSY", 17)
            return
        self._state(chan, RINGING)
        if not config.auto_answer:
            return
        await asyncio.sleep(self.answer_delay)
        if not chan.hungup and chan.state_code != UP:
            self.answer(chan)

    def _fail_outgoing(self, chan: SimChannel, status: str, cause: int) -> None:
        out = self._outgoing.get(chan)
        owner = out.owner if out is not None else None
        self._dial_end(owner, chan, status)
        chan.hangup_cause = cause
        self._outgoing_failed(chan, status)
        self.hangup(chan)

    def far_end_hangup(self, ch: SimChannel) -> None:
        """The phone or the network hangs ``ch`` up (cause 16); a phone
        still ringing declines the call instead (DialEnd BUSY, cause 21)."""
        out = self._outgoing.get(ch)
        if out is not None and out.status is None and ch.state_code != UP:
            self._fail_outgoing(ch, "BUSY", 21)
            return
        self.queue_hangup(ch, 16)

    def answer_device(self, device: str) -> bool:
        """A ringing phone of ``device`` is picked up (for devices without
        auto-answer)."""
        for ch in list(self.channels.values()):
            if ch.device == device and ch.state_code == RINGING:
                self.answer(ch)
                return True
        return False

    # --------------------------------------------------------------- bridges

    def new_bridge(self) -> Bridge:
        bridge = Bridge(str(uuid.uuid4()))
        self.bridges[bridge.uniqueid] = bridge
        self.ev("BridgeCreate", "call", bridge_headers(bridge))
        return bridge

    def bridge_enter(
        self, bridge: Bridge, ch: SimChannel, *, swap: SimChannel | None = None
    ) -> None:
        self.advance_recordings(ch)
        bridge.channels.append(ch)
        ch.bridge = bridge
        ch.kicked = False
        extra = [("SwapUniqueid", swap.uniqueid)] if swap is not None else []
        self.ev("BridgeEnter", "call", [*bridge_headers(bridge), *channel_headers(ch), *extra])
        for name in ("ATTENDEDTRANSFER", "BLINDTRANSFER"):
            if ch.variables.get(name):
                # set by a transfer, cleared once the channel is bridged
                # again (tests/fixtures/ami-real/03, 04)
                self.set_var(ch, name, "")
        self._bridge_peers(bridge)

    def _clear_bridgepeer(self, ch: SimChannel) -> None:
        if ch.variables.get("BRIDGEPEER"):
            self.set_var(ch, "BRIDGEPEER", "")

    def _bridge_peers(self, bridge: Bridge) -> None:
        """A two-party bridge sets each party's BRIDGEPEER to the other's
        name (in the order they are in the bridge)."""
        if len(bridge.channels) != 2:
            return
        first, second = bridge.channels
        self.set_var(first, "BRIDGEPEER", second.name)
        self.set_var(second, "BRIDGEPEER", first.name)

    def bridge_leave(self, ch: SimChannel, *, dissolve: bool = True, moving: bool = False) -> None:
        """``moving``: ``ch`` goes straight into another bridge (transfers)."""
        bridge = ch.bridge
        if bridge is None:
            return
        # The channel's BRIDGEPEER is cleared (not when it moves to another
        # bridge), and so is that of the ones the dissolving bridge will
        # push out (02, 08: before BridgeLeave).
        if not moving:
            self._clear_bridgepeer(ch)
        if dissolve:
            for other in bridge.channels:
                if other is not ch and not other.leaving:
                    self._clear_bridgepeer(other)
        self.advance_recordings(ch)
        bridge.channels.remove(ch)
        ch.bridge = None
        if ch.hangup_requested and ch.hangup_cause == 0:
            ch.hangup_cause = 16
        self.ev("BridgeLeave", "call", [*bridge_headers(bridge), *channel_headers(ch)])
        if dissolve and bridge.channels:
            cause = ch.hangup_cause or 16
            for other in list(bridge.channels):
                if other.leaving:
                    continue
                self._kick(other, cause)
        if not bridge.channels:
            self.destroy_bridge(bridge)

    def destroy_bridge(self, bridge: Bridge) -> None:
        if bridge.destroyed:
            return
        bridge.destroyed = True
        self.bridges.pop(bridge.uniqueid, None)
        self.ev("BridgeDestroy", "call", bridge_headers(bridge))

    def _kick(self, ch: SimChannel, cause: int) -> None:
        """``ch`` is pushed out of its bridge (the bridge dissolved)."""
        ch.kicked = True
        if ch.task is not None:
            ch.wake()
            return
        self.spawn(self._kicked_out(ch, cause))

    async def _kicked_out(self, ch: SimChannel, cause: int) -> None:
        await asyncio.sleep(0)
        if ch.hungup or not ch.kicked:
            return
        self.bridge_leave(ch, dissolve=False)
        if ch.hangup_cause == 0:
            ch.hangup_cause = cause
        if ch.after_goto is not None and not ch.hangup_requested:
            context, exten, priority = ch.after_goto
            ch.after_goto = None
            self.start_pbx(ch, context, exten, priority)
            return
        self.hangup(ch)

    # --------------------------------------------------------------- hangup

    def hangup(self, ch: SimChannel) -> None:
        """Hang the channel up now (the end of ast_hangup)."""
        if ch.hungup:
            return
        self.moh_stop(ch)
        atx = self._atxfers.pop(ch, None)
        if atx is not None:
            # The transferer hangs up during an attended transfer: its
            # consultation partner stays for the transfer to complete.
            atx.target_one.leaving = True
        if ch.bridge is not None:
            self.bridge_leave(ch)
        for rec in ch.mixmonitors:
            self._finish_recording(ch, rec)
        ch.mixmonitors.clear()
        ch.hungup = True
        self.channels.pop(ch.name, None)
        if ch.device is not None:
            of_device = self._device_channels.get(ch.device)
            if of_device is not None:
                of_device.pop(ch.name, None)
                if not of_device:
                    del self._device_channels[ch.device]
        for spy in [s for s in self.spy_sessions.values() if s.spyee is ch]:
            self._end_spy(spy)  # its audiohook is detached: ChanSpy lets go
        peer = ch.peer
        if peer is not None and not peer.hungup:
            self.queue_hangup(peer, ch.hangup_cause)
        transferred = atx is not None and self._atxfer_complete(atx)
        cause = ch.hangup_cause
        late = ch.late_callerid
        if late is not None:
            ch.caller_num, ch.caller_name = late
        self.ev_chan("Hangup", ch, [("Cause", str(cause)), ("Cause-txt", cause_text(cause))])
        if late is not None:
            ch.late_callerid = None
            self.ev_chan("NewCallerid", ch, [("CID-CallingPres", _presentation(ch))])
        self._device_state(ch)
        if ch in self._outgoing:
            self._outgoing_failed(ch, "CHANUNAVAIL")
        if atx is not None:
            if transferred:
                self.spawn(self._local_optimize(atx))
            else:
                self._atxfer_abandon(atx)
        ch.answer_event.set()
        ch.wake()

    def queue_hangup(self, ch: SimChannel, cause: int) -> None:
        """A hangup arrives from the other side (a Local half, the network)."""
        if ch.hungup:
            return
        self.ev_chan("HangupRequest", ch, [("Cause", str(cause))])
        if cause:
            ch.hangup_cause = cause
        ch.hangup_requested = True
        if ch.task is not None:
            ch.wake()
        else:
            self.spawn(self._hangup_later(ch))

    async def _hangup_later(self, ch: SimChannel) -> None:
        await asyncio.sleep(0)
        if ch.task is not None:
            ch.wake()
            return
        self._hangup_no_pbx(ch, ch.hangup_cause)

    def _hangup_no_pbx(self, ch: SimChannel, cause: int) -> None:
        if ch.hungup:
            return
        if cause and not ch.hangup_cause:
            ch.hangup_cause = cause
        out = self._outgoing.get(ch)
        if out is not None and out.status is None:
            out.status = "CANCEL"
        self.hangup(ch)

    def request_hangup(self, ch: SimChannel, cause: int = 0) -> None:
        """The AMI Hangup action: soft hangup with an optional cause."""
        if cause > 0:
            ch.hangup_cause = cause
        ch.hangup_requested = True
        if ch.task is not None:
            ch.wake()
        else:
            self.spawn(self._hangup_later(ch))

    # ------------------------------------------------------------ originate

    async def originate(
        self,
        *,
        tech: str,
        resource: str,
        context: str,
        exten: str,
        priority: int,
        application: str,
        app_data: str,
        cid_num: str | None,
        cid_name: str | None,
        variables: list[tuple[str, str]],
        timeout: float,
        ids: tuple[str | None, str | None],
        action_id: str | None,
        emit_response: bool,
    ) -> bool:
        """Place the first leg; when it answers run the extension or the
        application on it. Emits OriginateResponse if ``emit_response``.
        Returns whether the leg answered."""
        dial_string = f"{tech}/{resource}"
        chan: SimChannel | None
        if emit_response:
            # Asterisk's fast_originate thread needs a moment; a client often
            # sends its next action before the first events arrive.
            await asyncio.sleep(self.originate_latency)

        def respond(ok: bool, reason: int, answered_chan: SimChannel | None) -> None:
            if emit_response:
                self._originate_response(
                    action_id,
                    ok,
                    reason,
                    answered_chan,
                    dial_string,
                    context,
                    exten,
                    application,
                    app_data,
                )

        if tech == "Local":
            spec, _, flags = resource.partition("/")
            lexten, _, lcontext = spec.partition("@")
            lcontext = lcontext or "default"
            one, two = self.new_local_pair(lexten, lcontext, ids=ids)
            chan = one
            one.application, one.app_data = "AppDial2", "(Outgoing Line)"
            self._newexten(one)
            for name, value in reversed(variables):
                self.set_var(one, name, value)
            if cid_num is not None or cid_name is not None:
                self._set_callerid(one, cid_num, cid_name)
                self._set_connected(one, cid_num, cid_name)
            for name, value in variables:
                self.set_var(two, name, value)
            if cid_num is not None or cid_name is not None:
                two.caller_num, two.caller_name = cid_num, cid_name
                two.connected_num, two.connected_name = cid_num, cid_name
                self.ev_chan(
                    "NewCallerid",
                    two,
                    [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")],
                )
                self.ev_chan("NewConnectedLine", two)
            out = _Outgoing(one, None, dialstring=spec)
            self._outgoing[one] = out
            if not self.dialplan.exists(lcontext, lexten):
                one.peer = two.peer = None
                self.hangup(two)
                respond(False, 0, None)
                self.hangup(one)
                self._outgoing.pop(one, None)
                return False
            self._local_bridge(one, two, optimize="n" not in flags)
            self._dial_begin(None, one, spec)
            self.start_pbx(two, lcontext, lexten, 1)
        elif tech == "PJSIP":
            number, _, host = resource.partition("@")
            if host:
                endpoint, device_key, lcontext = host, number, self.dialplan.trunk_context
            elif number in self.endpoints:
                endpoint, device_key, lcontext = number, number, self.dialplan.device_context
            else:
                respond(False, 0, None)
                return False
            chan = self.new_pjsip(
                endpoint, state=DOWN, context=lcontext, exten="s", uniqueid=ids[0] or None
            )
            chan.application, chan.app_data = "AppDial2", "(Outgoing Line)"
            self._newexten(chan)
            for name, value in reversed(variables):
                self.set_var(chan, name, value)
            if cid_num is not None or cid_name is not None:
                self._set_callerid(chan, cid_num, cid_name)
                self._set_connected(chan, cid_num, cid_name)
            out = _Outgoing(chan, None, dialstring=resource)
            self._outgoing[chan] = out
            self._dial_begin(None, chan, resource)
            self.spawn(self._ring(chan, device_key))
        else:
            respond(False, 0, None)
            return False

        answered = False
        try:
            await asyncio.wait_for(chan.answer_event.wait(), timeout)
        except TimeoutError:
            pass
        status = out.status
        self._outgoing.pop(chan, None)
        if status == "ANSWER" and not chan.hungup:
            answered = True
            self._dial_end(None, chan, "ANSWER")
            respond(True, 4, chan)
            if application:
                chan.application, chan.app_data = application, app_data
                chan.task = self.spawn(self._run_originate_app(chan, application, app_data))
            else:
                self.start_pbx(chan, context, exten, priority)
            return True
        reason = {"BUSY": 5, "CHANUNAVAIL": 8}.get(status or "", 3)
        if status is None:
            out.status = "NOANSWER"
            self._dial_end(None, chan, "NOANSWER")
            self._hangup_no_pbx(chan, 0)
        respond(False, reason, None)
        return answered

    async def _run_originate_app(self, ch: SimChannel, app: str, data: str) -> None:
        try:
            await self._run_app(ch, app, data)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("originate application %s on %s failed", app, ch.name)
        if ch.yanked or ch.hungup:
            return
        ch.task = None
        if ch.bridge is not None:
            self.bridge_leave(ch)
        self.hangup(ch)

    def _originate_response(
        self,
        action_id: str | None,
        ok: bool,
        reason: int,
        chan: SimChannel | None,
        dial_string: str,
        context: str,
        exten: str,
        application: str,
        app_data: str,
    ) -> None:
        headers: list[Header] = []
        if action_id:
            headers.append(("ActionID", action_id))
        headers.append(("Response", "Success" if ok else "Failure"))
        headers.append(("Channel", chan.name if chan is not None else dial_string))
        if application:
            headers += [("Application", application), ("Data", app_data)]
        else:
            headers += [("Context", context), ("Exten", exten)]
        headers.append(("Reason", str(reason)))
        headers.append(("Uniqueid", chan.uniqueid if chan is not None else "<unknown>"))
        num = chan.caller_num if chan is not None else None
        name = chan.caller_name if chan is not None else None
        headers.append(("CallerIDNum", num if num is not None else "<unknown>"))
        headers.append(("CallerIDName", name if name is not None else "<unknown>"))
        self.ev("OriginateResponse", "call", headers)

    # ---------------------------------------------------- redirect, bridge

    def redirect(self, ch: SimChannel, context: str, exten: str, priority: int) -> None:
        """Asterisk's ast_async_goto. A bridged channel first clears its
        BRIDGEPEER and moves to the target while still in the bridge: a
        Newexten for the target that names the application it was running
        (Dial, AppDial); the application at the target priority then gets no
        Newexten of its own (tests/fixtures/ami-real/02-hold-unhold.txt)."""
        if ch.bridge is not None:
            self.set_var(ch, "BRIDGEPEER", "")
            self._goto_in_bridge(ch, context, exten, priority)
        self._async_goto(ch, context, exten, priority)

    def _goto_in_bridge(self, ch: SimChannel, context: str, exten: str, priority: int) -> None:
        ch.context, ch.exten, ch.priority = context, exten, priority
        self._newexten(ch)

    def _async_goto(self, ch: SimChannel, context: str, exten: str, priority: int) -> None:
        if ch.task is not None and ch.has_pbx:
            ch.async_goto = (context, exten, priority)
            ch.wake()
            return
        if ch.task is not None:
            # An originate application channel: it leaves its application.
            ch.async_goto = (context, exten, priority)
            ch.wake()
            self.spawn(self._restart_after_app(ch, context, exten, priority))
            return
        if ch.bridge is not None:
            self.bridge_leave(ch)
        self.start_pbx(ch, context, exten, priority)

    async def _restart_after_app(
        self, ch: SimChannel, context: str, exten: str, priority: int
    ) -> None:
        ch.yanked = True
        task = ch.task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        ch.yanked = False
        ch.async_goto = None
        if not ch.hungup:
            if ch.bridge is not None:
                self.bridge_leave(ch)
            self.start_pbx(ch, context, exten, priority)

    def dual_redirect(
        self,
        a: SimChannel,
        b: SimChannel,
        target_a: tuple[str, str, int],
        target_b: tuple[str, str, int],
    ) -> None:
        """Redirect with ExtraChannel (Callwright's hold). Of two bridged
        channels, both clear BRIDGEPEER and show their targets (Newexten)
        before either leaves the bridge (tests/fixtures/ami-real/02-hold-unhold.txt;
        which of the two leaves first varies on a real Asterisk)."""
        a.leaving = True
        b.leaving = True
        for ch in (a, b):
            if ch.bridge is not None:
                self.set_var(ch, "BRIDGEPEER", "")
        for ch, target in ((b, target_b), (a, target_a)):
            if ch.bridge is not None:
                self._goto_in_bridge(ch, *target)
        for ch in (a, b):
            if ch.bridge is not None:
                self.bridge_leave(ch)
        self._async_goto(a, *target_a)
        self._async_goto(b, *target_b)
        self.spawn(self._clear_leaving(a, b))

    async def _clear_leaving(self, *chans: SimChannel) -> None:
        for _ in range(20):
            await asyncio.sleep(0)
            if all(c.bridge is None or c.hungup for c in chans):
                break
        for c in chans:
            c.leaving = False

    def bridge_action(self, a: SimChannel, b: SimChannel) -> None:
        """The AMI Bridge action: both channels are yanked out of whatever
        they run and put into a new basic bridge; when the bridge ends each
        goes back to where it was, one priority on."""
        bridge = self.new_bridge()
        for ch in (a, b):
            self.moh_stop(ch)
            if ch.bridge is not None:
                old = ch.bridge
                old.channels.remove(ch)
                ch.bridge = None
                self.ev("BridgeLeave", "call", [*bridge_headers(old), *channel_headers(ch)])
                if not old.channels:
                    self.destroy_bridge(old)
            else:
                self._yank(ch)
            if ch.state_code != UP:
                self.answer(ch)
            self.bridge_enter(bridge, ch)
        # Each party's connected line becomes the other's caller id.
        for ch, other in ((a, b), (b, a)):
            if (ch.connected_num, ch.connected_name) != (other.caller_num, other.caller_name):
                self._set_connected(ch, other.caller_num, other.caller_name)
                self._propagate_connected(ch)

    @staticmethod
    def bridge_shared(a: SimChannel, b: SimChannel) -> bool:
        """Both channels already share a bridge: the Bridge action fails."""
        return a.bridge is not None and a.bridge is b.bridge

    def bridge_action_teardown(self, a: SimChannel, b: SimChannel) -> None:
        """The Bridge action on two channels that already share a bridge
        (Asterisk 22.10.1 answers "Unable to add Channel2 to bridge" and the
        call is torn down): Channel1 moves to a new bridge, the old one
        dissolves and kicks Channel2, then the new bridge is destroyed and
        kicks Channel1."""
        bridge = self.new_bridge()
        self.bridge_leave(a)  # dissolves the old bridge: b is kicked
        self.bridge_enter(bridge, a)
        bridge.channels.remove(a)
        a.bridge = None
        self.ev("BridgeLeave", "call", [*bridge_headers(bridge), *channel_headers(a)])
        self.destroy_bridge(bridge)
        self._kick(a, 16)

    def in_transfer_bridge(self, ch: SimChannel) -> bool:
        """``ch`` is in a bridge an attended transfer holds (the transferee's
        or the consultation bridge): Asterisk inhibits moving channels out
        of those, so the Bridge action cannot take ``ch``."""
        bridge = ch.bridge
        if bridge is None:
            return False
        return any(
            bridge is atx.transferee_bridge or bridge is atx.consult_bridge
            for atx in self._atxfers.values()
        )

    def bridge_action_refused(self, ch: SimChannel) -> None:
        """The Bridge action could not move ``ch`` out of its bridge (an
        attended transfer is under way): the new bridge is created and
        destroyed, ``ch``'s music on hold stops, nobody moves (Asterisk
        22.10.1, tests/sim/fixtures/real-bridge-during-consultation.txt)."""
        bridge = self.new_bridge()
        self.moh_stop(ch)
        self.destroy_bridge(bridge)

    def _yank(self, ch: SimChannel) -> None:
        """ast_channel_yank: the channel leaves what it was running (its PBX
        thread ends) and, after the bridge, goes on one priority later. The
        channel keeps its name and Uniqueid and Asterisk 22.10.1 publishes
        no event for the surrogate it uses (no ``Surrogate/...`` Newchannel,
        no ``<ZOMBIE>`` Hangup: tests/fixtures/ami-real/02-hold-unhold.txt);
        its snapshot already shows the after-bridge priority."""
        had_pbx = ch.has_pbx
        ch.after_goto = (ch.context, ch.exten, ch.priority + 1 if had_pbx else ch.priority)
        ch.priority = ch.after_goto[2]
        if ch.task is not None:
            ch.yanked = True
            ch.wake()
            task = ch.task
            ch.task = None
            ch.has_pbx = False
            self.spawn(self._end_yanked(ch, task))

    async def _end_yanked(self, ch: SimChannel, task: asyncio.Task[Any]) -> None:
        await asyncio.gather(task, return_exceptions=True)
        ch.yanked = False
        ch.kicked = False

    # ------------------------------------------------------------ transfers

    def blind_transfer(self, transferer: SimChannel, context: str, exten: str) -> bool:
        """AMI BlindTransfer. Returns False when the transferer is not bridged
        (Asterisk answers "Transfer invalid")."""
        bridge = transferer.bridge
        if bridge is None or len(bridge.channels) != 2:
            self.ev(
                "BlindTransfer",
                "call",
                [
                    ("Result", "Invalid"),
                    *channel_headers(transferer, "Transferer"),
                    ("IsExternal", "Yes"),
                    ("Context", context),
                    ("Extension", exten),
                ],
            )
            return False
        transferee = next(c for c in bridge.channels if c is not transferer)
        if transferer.on_hold:
            transferer.on_hold = False
        self.ev_chan("Unhold", transferer)
        self.set_var(transferee, "BLINDTRANSFER", transferer.name)
        self.set_var(transferer, "BLINDTRANSFER", transferee.name)
        self._clear_bridgepeer(transferer)
        self.ev(
            "BlindTransfer",
            "call",
            [
                ("Result", "Success"),
                *channel_headers(transferer, "Transferer"),
                *channel_headers(transferee, "Transferee"),
                *bridge_headers(bridge),
                ("IsExternal", "Yes"),
                ("Context", context),
                ("Extension", exten),
            ],
        )
        self._clear_bridgepeer(transferee)
        # The transferer leaves and hangs up; the transferee goes to the target.
        transferer.leaving = True
        transferee.leaving = True
        self.bridge_leave(transferer, dissolve=False)
        transferer.hangup_cause = transferer.hangup_cause or 16
        if transferer.task is not None:
            transferer.hangup_requested = True
            transferer.wake()
        else:
            self.hangup(transferer)
        transferee.leaving = False
        transferer.leaving = False
        if transferee.hangup_cause == 0:
            transferee.hangup_cause = 16  # kicked with AST_CAUSE_NORMAL_CLEARING
        if transferee.has_pbx and transferee.task is not None:
            # ast_async_goto from inside Dial: the snapshot shows priority 1,
            # then the PBX resumes at priority 2 of the target, or ends there
            # if the extension does not exist (06-transfers.txt, bt-1 and
            # bt-badexten).
            transferee.context, transferee.exten, transferee.priority = context, exten, 1
            self._newexten(transferee)
            resume = 2 if self.dialplan.extension(context, exten) is not None else 1
            transferee.async_goto = (context, exten, resume)
            transferee.wake()
        else:
            self.bridge_leave(transferee, dissolve=False)
            self.start_pbx(transferee, context, exten, 1)
        return True

    def atxfer(self, transferer: SimChannel, context: str, exten: str) -> None:
        """AMI Atxfer: queue the atxfer feature code and the digits; the
        bridge puts the transferee on hold and dials Local/exten@context."""
        self.spawn(self._atxfer(transferer, context, exten))

    async def _atxfer(self, transferer: SimChannel, context: str, exten: str) -> None:
        await asyncio.sleep(0)
        if context:
            self.set_var(transferer, "TRANSFER_CONTEXT", context)
        for digit in ATXFER_CODE:
            self._dtmf(transferer, digit)
        bridge = transferer.bridge
        if bridge is None or transferer.hungup or not transferer.can_transfer:
            # Without the Dial t/T option the bridge has no transfer feature:
            # the digits reach the other side as DTMF and nothing else happens.
            for digit in exten:
                self._dtmf(transferer, digit)
            return
        others = [c for c in bridge.channels if c is not transferer]
        transferer.on_hold = True
        self.ev_chan("Hold", transferer)
        for other in others:
            self.moh_start(other)
        for digit in exten:
            self._dtmf(transferer, digit)
        # '#' ends the transfer digits (Asterisk dials at once instead of
        # waiting transferdigittimeout for more digits); the target is what
        # came before it. This simulator dials at once either way.
        exten = exten.partition("#")[0]
        ctx = context or transferer.context
        one, two = self.new_local_pair(exten, ctx, linkedid=transferer.linkedid)
        self.set_var(one, "TRANSFERERNAME", transferer.name)
        self.set_var(one, "ATTENDEDTRANSFER", transferer.name)
        self.set_var(two, "ATTENDEDTRANSFER", transferer.name)
        self.set_var(two, "TRANSFERERNAME", transferer.name)
        atx = _Atxfer(transferer, bridge, None, one, two, ctx, exten)
        self._atxfers[transferer] = atx
        out = _Outgoing(one, None, dialstring=f"{exten}@{ctx}")
        self._outgoing[one] = out
        two.caller_num, two.caller_name = transferer.caller_num, transferer.caller_name
        self._set_callerid(two, two.caller_num, two.caller_name)
        if not self.dialplan.exists(ctx, exten):
            self._atxfers.pop(transferer, None)
            self._outgoing.pop(one, None)
            self._local_call_failed(one, two)
            self._atxfer_restore(transferer, bridge)
            return
        self._local_bridge(one, two, optimize=True)
        self._set_connected(one, transferer.caller_num, transferer.caller_name)
        consult = self.new_bridge()
        atx.consult_bridge = consult
        self.bridge_enter(consult, one)
        # The transferer moves into the consultation bridge at once, before
        # the target is dialled (tests/fixtures/ami-real/04: BridgeLeave,
        # BridgeEnter, NewConnectedLine, then the target's Newexten/Dial).
        transferer.leaving = True
        self.bridge_leave(transferer, dissolve=False, moving=True)
        transferer.leaving = False
        self.bridge_enter(consult, transferer)
        self._set_connected(transferer, one.caller_num, one.caller_name)
        self.start_pbx(two, ctx, exten, 1)
        try:
            await asyncio.wait_for(one.answer_event.wait(), 30.0)
        except TimeoutError:
            pass
        self._outgoing.pop(one, None)
        if self._atxfers.get(transferer) is not atx:
            return
        if one.hungup or out.status != "ANSWER" or transferer.hungup:
            self._atxfers.pop(transferer, None)
            if not one.hungup:
                self.request_hangup(one)
            if not transferer.hungup:
                self._atxfer_restore(transferer, bridge)
            return
        self._dial_end(None, one, "ANSWER")
        if one.bridge is consult:
            self._bridge_peers(consult)

    def _atxfer_restore(self, transferer: SimChannel, bridge: Bridge) -> None:
        if transferer.bridge is not bridge and not bridge.destroyed:
            if transferer.bridge is not None:
                transferer.leaving = True
                self.bridge_leave(transferer, dissolve=False, moving=True)
                transferer.leaving = False
            self.bridge_enter(bridge, transferer)
        for other in bridge.channels:
            if other is not transferer:
                self.moh_stop(other)
        transferer.on_hold = False
        self.ev_chan("Unhold", transferer)

    def cancel_atxfer(self, transferer: SimChannel) -> None:
        self.spawn(self._cancel_atxfer(transferer))

    async def _cancel_atxfer(self, transferer: SimChannel) -> None:
        await asyncio.sleep(0)
        for digit in ATXFER_ABORT_CODE:
            self._dtmf(transferer, digit)
        atx = self._atxfers.pop(transferer, None)
        if atx is None:
            return
        self._atxfer_restore(transferer, atx.transferee_bridge)
        for other in atx.transferee_bridge.channels:
            if other is not transferer:
                self._set_connected(other, transferer.caller_num, transferer.caller_name)
                self._propagate_connected(other)
        transferee = next((c for c in atx.transferee_bridge.channels if c is not transferer), None)
        if transferee is not None:
            self._set_connected(transferer, transferee.caller_num, transferee.caller_name)
        one = atx.target_one
        if not one.hungup:
            one.hangup_cause = 16
            if one.bridge is not None:
                self.bridge_leave(one)
            self.hangup(one)

    def _atxfer_complete(self, atx: _Atxfer) -> bool:
        """The transferer hung up during an attended transfer (called from
        its hangup, before its Hangup event, as in 06 atx-2): if the target
        answered, merge the consultation bridge into the transferee's
        (BridgeMerge, AttendedTransfer). Returns whether it did."""
        one, two = atx.target_one, atx.target_two
        one.leaving = False
        main = atx.transferee_bridge
        consult = atx.consult_bridge
        if one.hungup or consult is None or one.state_code != UP or main.destroyed:
            return False
        self.ev(
            "BridgeMerge",
            "call",
            [*bridge_headers(main, "To"), *bridge_headers(consult, "From")],
        )
        if one.bridge is consult:
            one.leaving = True
            self.bridge_leave(one, dissolve=False, moving=True)
            one.leaving = False
        transferees = list(main.channels)
        for other in transferees:
            self.moh_stop(other)
        self.bridge_enter(main, one)
        transferer = atx.transferer
        self.ev(
            "AttendedTransfer",
            "call",
            [
                ("Result", "Success"),
                *channel_headers(transferer, "OrigTransferer"),
                *bridge_headers(main, "Orig"),
                *channel_headers(transferer, "SecondTransferer"),
                *bridge_headers(consult, "Second"),
                *(channel_headers(transferees[0], "Transferee") if transferees else []),
                *([] if self._target_left_out() else channel_headers(one, "TransferTarget")),
                ("IsExternal", "No"),
                ("DestType", "Bridge"),
                ("DestBridgeUniqueid", main.uniqueid),
            ],
        )
        for other in transferees:
            self._set_connected(one, other.caller_num, other.caller_name)
            self._set_connected(other, two.connected_num, two.connected_name)
            self._propagate_connected(other)
        # the transferer's connected line is cleared without an event
        transferer.connected_num = transferer.connected_name = None
        self._propagate_connected(transferer)
        self.destroy_bridge(consult)
        return True

    def _target_left_out(self) -> bool:
        share = self.transfer_target_missing
        return share > 0 and (share >= 1 or self._random.random() < share)

    def _propagate_connected(self, ch: SimChannel) -> None:
        """A Local half's connected line becomes its other half's caller id;
        during transfers Asterisk publishes that NewCallerid only after the
        other half's Hangup (06-transfers.txt)."""
        peer = ch.peer
        if ch.tech != "Local" or peer is None or peer.hungup:
            return
        peer.late_callerid = (ch.connected_num, ch.connected_name)

    def _atxfer_abandon(self, atx: _Atxfer) -> None:
        """The transferer hung up before the target answered: the simulator
        cancels the transfer (Asterisk would connect the transferee to the
        ringing target) and the transferee's bridge ends."""
        one = atx.target_one
        one.leaving = False
        if not one.hungup:
            one.hangup_cause = 16
            if one.bridge is not None:
                self.bridge_leave(one, dissolve=False)
            self.hangup(one)
        for other in list(atx.transferee_bridge.channels):
            self.moh_stop(other)
            self._kick(other, 16)

    async def _local_optimize(self, atx: _Atxfer) -> None:
        """After an attended transfer: the channel Local ;2 is bridged with
        takes ;1's place in the transferee's bridge; ;1 and ;2 go away."""
        await asyncio.sleep(0)
        one, two = atx.target_one, atx.target_two
        main = atx.transferee_bridge
        inner = two.bridge
        target = next((c for c in inner.channels if c is not two), None) if inner else None
        if target is None or inner is None or one.hungup or two.hungup or main.destroyed:
            return
        transferee = next((c for c in main.channels if c is not one), None)
        if transferee is not None:
            self._set_connected(target, transferee.caller_num, transferee.caller_name)
            self._propagate_connected(target)
        self.ev(
            "LocalOptimizationBegin",
            "call",
            [
                *channel_headers(one, "LocalOne"),
                *channel_headers(two, "LocalTwo"),
                *channel_headers(target, "Source"),
                ("DestUniqueId", two.uniqueid),
                ("Id", "0"),
            ],
        )
        target.leaving = True
        self.bridge_leave(target, dissolve=False, moving=True)
        target.leaving = False
        one.leaving = True
        self.bridge_leave(one, dissolve=False)
        one.leaving = False
        self.bridge_enter(main, target, swap=one)
        if transferee is not None:
            self._set_callerid(two, transferee.caller_num, transferee.caller_name)
        self.ev(
            "LocalOptimizationEnd",
            "call",
            # Asterisk 22 reported "Success: No" for this swap (06, atx-2).
            [
                *channel_headers(one, "LocalOne"),
                *channel_headers(two, "LocalTwo"),
                ("Success", "No"),
                ("Id", "0"),
            ],
        )
        # ;2 leaves its (now lonely) bridge and both halves go away.
        two.leaving = True
        if two.bridge is not None:
            self.bridge_leave(two, dissolve=False)
        two.leaving = False
        two.hangup_cause = 16
        one.hangup_cause = 16
        two.kicked = True
        two.hangup_requested = True
        two.wake()

    def _dtmf(self, ch: SimChannel, digit: str) -> None:
        self.ev_chan(
            "DTMFEnd",
            ch,
            [("Digit", digit), ("DurationMs", "0"), ("Direction", "Received")],
            cls="dtmf",
        )

    # ----------------------------------------------------------- MixMonitor

    def next_mixmonitor_id(self) -> str:
        self._mixmon_seq += 0x40
        return f"0x{self._mixmon_seq:x}"

    def mixmonitor_start(
        self, ch: SimChannel, file: str, options: str, *, rec_id: str | None = None
    ) -> MixMonitorRec:
        shown, target = spool_path(file, self.spool_dir)
        flags = option_flags(options)
        writer = WavRecorder(
            target, started=time.monotonic(), only_bridged="b" in flags, scale=self.time_scale
        )
        rec = MixMonitorRec(id=rec_id or self.next_mixmonitor_id(), path=shown, writer=writer)
        ch.mixmonitors.append(rec)
        self.set_var(ch, "MIXMONITOR_FILENAME", shown)
        if flags.get("i"):
            self.set_var(ch, flags["i"], rec.id)
        self.ev_chan("MixMonitorStart", ch)
        if ch.bridge is not None:
            # the bridge re-evaluates itself with the new audiohook (09)
            self._bridge_peers(ch.bridge)
        if target is not None:
            rec.task = self.spawn(self._record(ch, writer))
        return rec

    async def _record(self, ch: SimChannel, writer: WavRecorder) -> None:
        """Asterisk's recording thread: the file grows as the call goes on."""
        while not writer.closed:
            await asyncio.sleep(RECORDING_TICK)
            writer.advance(time.monotonic(), bridged=ch.bridge is not None)

    def advance_recordings(self, ch: SimChannel) -> None:
        """Write a channel's audio so far (before its bridge or mute changes)."""
        now = time.monotonic()
        for rec in ch.mixmonitors:
            if rec.writer is not None:
                rec.writer.advance(now, bridged=ch.bridge is not None)

    def mixmonitor_stop(self, ch: SimChannel, mixmonitor_id: str | None) -> bool:
        recs = [r for r in ch.mixmonitors if mixmonitor_id in (None, "", r.id)]
        if not recs:
            return False
        rec = recs[0]
        ch.mixmonitors.remove(rec)
        self._finish_recording(ch, rec)
        self.ev_chan("MixMonitorStop", ch)
        return True

    def mixmonitor_mute(
        self, ch: SimChannel, direction: str, state: bool, mixmonitor_id: str | None
    ) -> bool:
        recs = [r for r in ch.mixmonitors if mixmonitor_id in (None, "", r.id)]
        if not recs:
            return False
        self.advance_recordings(ch)
        for rec in recs:
            if direction in ("read", "both"):
                rec.muted_read = state
            if direction in ("write", "both"):
                rec.muted_write = state
            if rec.writer is not None:
                rec.writer.mute(direction, state)
        self.ev_chan(
            "MixMonitorMute", ch, [("Direction", direction), ("State", "1" if state else "0")]
        )
        return True

    def _finish_recording(self, ch: SimChannel, rec: MixMonitorRec) -> None:
        """The file is complete (header sizes fixed) before the event that
        ends the recording (MixMonitorStop, Hangup) is emitted."""
        if rec.task is not None:
            rec.task.cancel()
            rec.task = None
        if rec.writer is not None:
            rec.writer.close(time.monotonic(), bridged=ch.bridge is not None)

    def close_recordings(self) -> None:
        """Shutting down: finish every file still being written."""
        for ch in list(self.channels.values()):
            for rec in ch.mixmonitors:
                self._finish_recording(ch, rec)

    # -------------------------------------------------------- inbound calls

    async def inbound_call(self, caller_num: str, caller_name: str, did: str) -> SimChannel:
        """A customer calls the DID over the trunk. Returns the customer's
        channel once it reached the holding point (or hung up)."""
        if self.dialplan.name == "lab":
            return await self._lab_inbound(caller_num, caller_name)
        ch = self.new_pjsip(
            "trunk",
            state=RING,
            context=self.dialplan.trunk_context,
            exten=did,
            caller=(caller_num or None, caller_name or None),
        )
        ch.dnid = did
        self.start_pbx(ch, self.dialplan.trunk_context, did, 1)
        await self.wait_for(
            lambda: ch.hungup or (ch.moh_class is not None and ch.context == "callwright-hold")
        )
        return ch

    async def _lab_inbound(self, caller_num: str, caller_name: str) -> SimChannel:
        before = set(self.channels)
        self.spawn(
            self.originate(
                tech="Local",
                resource="100@inbound",
                context="caller",
                exten="s",
                priority=1,
                application="",
                app_data="",
                cid_num=caller_num or None,
                cid_name=caller_name or None,
                variables=[("ROUTE", "hold")],
                timeout=30.0,
                ids=(None, None),
                action_id=None,
                emit_response=True,
            )
        )

        def held() -> SimChannel | None:
            for name, ch in self.channels.items():
                if name not in before and name.endswith(";2") and ch.moh_class is not None:
                    return ch
            return None

        await self.wait_for(lambda: held() is not None)
        found = held()
        assert found is not None
        return found

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        if timeout is None:
            await loop()
        else:
            await asyncio.wait_for(loop(), timeout)

    def channels_of_device(self, device: str) -> list[SimChannel]:
        """The device's live channels, oldest first (``hangup`` takes a channel
        out of the index as it marks it hung up)."""
        return list(self._device_channels.get(device, {}).values())


def _presentation(ch: SimChannel) -> str:
    if ch.caller_num is None:
        return "67 (Number Unavailable)"
    return "0 (Presentation Allowed, Not Screened)"


def _float(text: str, default: float) -> float:
    try:
        return float(text)
    except ValueError:
        return default


_CID = re.compile(r'^\s*(?:"([^"]*)"|([^<]*?))\s*<([^>]*)>\s*$')


def _parse_cid(text: str) -> tuple[str | None, str | None]:
    """``"Name" <num>`` -> (name, num); a bare number -> (None, num)."""
    text = text.strip()
    match = _CID.match(text)
    if match:
        name = match.group(1) if match.group(1) is not None else (match.group(2) or "").strip()
        return (name or None), (match.group(3) or None)
    if text and all(c.isdigit() or c in "+*#" for c in text):
        return None, text
    return (text or None), None


def parse_callerid(text: str) -> tuple[str | None, str | None]:
    return _parse_cid(text)


def _format_cid(name: str | None, num: str | None) -> str:
    if name and num:
        return f'"{name}" <{num}>'
    if num:
        return f"<{num}>"
    return name or ""


def _dial_status(outs: list[_Outgoing], cancelled: bool) -> str:
    """DIALSTATUS of a Dial nobody answered."""
    if cancelled:
        return "CANCEL"
    statuses = {o.status for o in outs}
    for status in ("BUSY", "NOANSWER", "CONGESTION"):
        if status in statuses:
            return status
    return "CHANUNAVAIL"


def _first_other_num(bridge: Bridge, ch: SimChannel) -> str | None:
    for other in bridge.channels:
        if other is not ch:
            return other.caller_num
    return None
