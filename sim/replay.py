"""Replay the client side of a recorded Asterisk transcript against the
simulator and compare what comes back with what Asterisk sent.

``python -m sim.replay tests/fixtures/ami/04-redirect-bridge.txt`` prints the
differences; ``tests/sim/test_fidelity.py`` asserts there are none.

What is compared, after normalising run-specific values (Uniqueid epochs,
timestamps, SessionID, addresses, challenges, bridge UUIDs, MixMonitorID,
CommandId):

* replies (responses and the items of list actions), in order, header names
  and values; the items of one list as a multiset (Asterisk walks a hash
  container);
* every other event: the sequence of events about each channel (keyed by the
  channel the event is about) and about each bridge, header names in order
  and values. The global interleaving across channels is not compared: in
  Asterisk every channel has its own thread, and the recordings show the
  interleaving changing from run to run (e.g. where OriginateResponse lands),
  so OriginateResponse is compared as a multiset only.

Not compared: ``DeviceStateChange``, queue events, and VarSet of Asterisk's
bookkeeping variables (DIALSTATUS, BRIDGEPEER, DIALEDPEERNUMBER ...; see
``INTERNAL_VARIABLES``) unless asked for (``compare_messages(variables=)``,
``ReplayResult.window``): the simulator sets some of them, not all.

``AgiReplayServer`` plays the server side of ``11-fastagi.txt`` so that the
simulator's FastAGI client can be compared too. Not replayed: 07 (queues are
not simulated) and 10 (its calls were made by an unrecorded connection while
the recorded one toggled event masks; tests/sim/test_sim_protocol.py covers
Events and Filter instead).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cti.ami.framing import CLOSED, NEED_DATA, AmiConnection, Role
from cti.ami.messages import AmiEvent, AmiMessage, AmiResponse
from sim.pbx.model import ALL_CLASSES, AmiUser
from sim.pbx.server import PbxSimulator
from sim.transcripts import FROM_PBX, Connection, read_transcript

__all__ = [
    "INTERNAL_VARIABLES",
    "LAB_SECRETS",
    "AgiReplayServer",
    "Replay",
    "ReplayResult",
    "compare_messages",
    "lab_simulator",
    "replay_files",
]

IGNORED_EVENTS = frozenset(
    {
        "DeviceStateChange",
        "QueueMemberStatus",
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "AgentCalled",
        "AgentConnect",
        "AgentComplete",
    }
)
INTERNAL_VARIABLES = frozenset(
    {
        "BRIDGEPEER",
        "BRIDGEPVTCALLID",
        "DIALSTATUS",
        "DIALEDPEERNUMBER",
        "DIALEDPEERNAME",
        "DIALEDTIME",
        "DIALEDTIME_MS",
        "ANSWEREDTIME",
        "ANSWEREDTIME_MS",
        "RINGTIME",
        "RINGTIME_MS",
        "PROGRESSTIME",
        "PROGRESSTIME_MS",
        "BLINDTRANSFER",
        "ATTENDEDTRANSFER",
        "TRANSFERERNAME",
        "CHANLOCALSTATUS",
        "FORWARDERNAME",
        "QUEUEWAIT",
        "QUEUEWAIT_MS",
        "QUEUEPOSITION",
        "QEORIGINALPOS",
        "QEHOLDTIME",
        "ABANDONED",
        "MEMBERINTERFACE",
        "MEMBERNAME",
        "MEMBERCALLS",
        "MEMBERLASTCALL",
        "MEMBERPENALTY",
        "MEMBERDYNAMIC",
        "MEMBERREALTIME",
    }
)
LIST_EVENTS = frozenset(
    {
        "CoreShowChannel",
        "CoreShowChannelsComplete",
        "Status",
        "StatusComplete",
        "BridgeListItem",
        "BridgeListComplete",
        "BridgeInfoChannel",
        "BridgeInfoComplete",
        "ChannelHungup",
        "ChannelsHungupListComplete",
        "CoreShowChannelMap",
        "CoreShowChannelMapComplete",
    }
)
VOLATILE_HEADERS = frozenset(
    {
        "Timestamp",
        "EventTV",
        "SessionTV",
        "SessionID",
        "LocalAddress",
        "RemoteAddress",
        "Uptime",
        "LastReload",
        "Challenge",
        "MixMonitorID",
        "CommandId",
        "Seconds",
        "Duration",
        "CoreStartupDate",
        "CoreStartupTime",
        "CoreReloadDate",
        "CoreReloadTime",
        "CoreCurrentCalls",
        "CoreProcessedCalls",
        "LoginTime",
        "Key",
    }
)
_UNIQUEID = re.compile(r"\b1\d{9}\.(\d+)\b")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_POINTER = re.compile(r"\b0x[0-9a-f]{6,}\b")
_CHANNEL_KEYS = (
    "Channel",
    "DestChannel",
    "TransfererChannel",
    "OrigTransfererChannel",
    "LocalOneChannel",
)

Normalised = tuple[tuple[str, str], ...]


@dataclass
class ReplayResult:
    """``problems``: one (possibly multi-line) string per difference."""

    name: str
    problems: list[str] = field(default_factory=list)
    # per replayed connection: what Asterisk sent, what the simulator sent
    recorded: list[list[AmiMessage]] = field(default_factory=list)
    received: list[list[AmiMessage]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        if self.ok:
            return f"{self.name}: identical"
        return f"{self.name}: {len(self.problems)} difference(s)\n" + "\n".join(self.problems)

    def window(
        self,
        start: str,
        end: str | None = None,
        *,
        connection: int = 0,
        variables: Iterable[str] = (),
        keys: Iterable[str] | None = None,
    ) -> list[str]:
        """The differences in what came from the reply to action ``start``
        up to (not including) the reply to action ``end`` (to the end when
        None), on both sides; ``variables`` and ``keys`` as in
        ``compare_messages``."""
        want = _slice(self.recorded[connection], start, end)
        got = _slice(self.received[connection], start, end)
        return compare_messages(
            f"[{start}..{end or 'end'}]", want, got, variables=variables, keys=keys
        )

    def unexpected(self, allowed: Iterable[str] = ()) -> list[str]:
        """The problems no ``allowed`` regex matches (documented divergences)."""
        patterns = [re.compile(a, re.S) for a in allowed]
        return [p for p in self.problems if not any(pat.search(p) for pat in patterns)]


class _Normaliser:
    def __init__(self) -> None:
        self.bridges: dict[str, str] = {}

    def value(self, name: str, value: str) -> str:
        if name in VOLATILE_HEADERS:
            return "<volatile>"
        if name == "Output" and ("uptime" in value or "reload" in value):
            return "<volatile>"
        value = _UNIQUEID.sub(lambda m: f"<epoch>.{m.group(1)}", value)
        value = _UUID.sub(self._bridge, value)
        return _POINTER.sub("<pointer>", value)

    def _bridge(self, match: re.Match[str]) -> str:
        return self.bridges.setdefault(match.group(0), f"<bridge{len(self.bridges)}>")

    def message(self, msg: AmiMessage) -> Normalised:
        return tuple((k, self.value(k, v)) for k, v in msg.headers)


def _parse(data: bytes) -> list[AmiMessage]:
    conn = AmiConnection(Role.CLIENT)
    conn.receive_data(data)
    conn.receive_data(b"")
    out: list[AmiMessage] = []
    while True:
        msg = conn.next_message()
        if msg is NEED_DATA or msg is CLOSED:
            return out
        if isinstance(msg, (AmiEvent, AmiResponse)):
            out.append(msg)


def _compared(msg: AmiMessage) -> bool:
    if not isinstance(msg, AmiEvent):
        return True
    if msg.name in IGNORED_EVENTS:
        return False
    return not (msg.name == "VarSet" and (msg.get("Variable") or "") in INTERNAL_VARIABLES)


def _key(msg: Normalised) -> str:
    d = dict(msg)
    for name in _CHANNEL_KEYS:
        if name in d:
            return d[name]
    for name in ("BridgeUniqueid", "ToBridgeUniqueid"):
        if name in d:
            return d[name]
    return "<global>"


def _is_reply(msg: AmiMessage) -> bool:
    return isinstance(msg, AmiResponse) or (isinstance(msg, AmiEvent) and msg.name in LIST_EVENTS)


def _describe(msg: Normalised) -> str:
    d = dict(msg)
    head = d.get("Event") or f"Response:{d.get('Response')}"
    bits = [head]
    for name in (
        "Channel",
        "Context",
        "Exten",
        "Priority",
        "Application",
        "Cause",
        "Message",
        "ActionID",
    ):
        if name in d:
            bits.append(f"{name}={d[name]}")
    return " ".join(bits)


def _diff_message(where: str, want: Normalised, got: Normalised) -> list[str]:
    """One problem (a multi-line string), or none."""
    if want == got:
        return []
    wn, gn = [k for k, _ in want], [k for k, _ in got]
    lines = [
        f"{where}: expected {_describe(want)}",
        f"{' ' * len(where)}  got      {_describe(got)}",
    ]
    if wn != gn:
        lines.append(f"    header names differ:\n      want {wn}\n      got  {gn}")
    else:
        for (k, v1), (_, v2) in zip(want, got, strict=True):
            if v1 != v2:
                lines.append(f"    {k}: want {v1!r} got {v2!r}")
    return ["\n".join(lines)]


class Replay:
    """Replays transcripts, in order, against one simulator (so that a
    transcript continuing the calls of the previous one finds them)."""

    def __init__(
        self,
        sim: PbxSimulator,
        *,
        secrets: Mapping[str, str] | None = None,
        barrier_timeout: float = 3.0,
    ) -> None:
        self.sim = sim
        self.secrets = dict(secrets or {})
        self.barrier_timeout = barrier_timeout

    async def run(
        self,
        path: str | Path,
        *,
        connections: Iterable[int] | None = None,
        hooks: Mapping[str, Callable[[], Awaitable[None]]] | None = None,
        after: Mapping[str, Callable[[], Awaitable[None]]] | None = None,
        seed: tuple[int, int] | None = None,
        skip: tuple[str, str] | None = None,
    ) -> ReplayResult:
        """Replay ``path``. ``hooks`` maps an ActionID to a coroutine run
        just before the action carrying it is sent (to make happen what an
        unrecorded connection did during the recording); what it makes the
        simulator send is dropped. ``after`` maps an ActionID to a coroutine
        run once the reply to that action (the whole list, for a list
        action) arrived; what it makes the simulator send is kept and
        compared (an unrecorded connection started calls the recorded one
        saw: the lab user of tests/fixtures/ami-real/). ``skip=(a, b)``
        leaves out the actions from ActionID ``a`` up to (not including) ``b``
        and everything Asterisk sent meanwhile."""
        path = Path(path)
        result = ReplayResult(path.name)
        conns = read_transcript(path)
        if seed is not None:
            self.sim.pbx.seed_counters(channel_seq=seed[0], uniqueid_seq=seed[1])
        else:
            self._seed(conns)
        wanted = set(connections) if connections is not None else None
        for index, conn in enumerate(conns):
            if wanted is not None and index not in wanted:
                continue
            if skip is not None:
                conn = _cut(conn, *skip)
            await self._connection(conn, index, result, hooks or {}, after or {})
        return result

    def _seed(self, conns: list[Connection]) -> None:
        """Start the simulator's channel and Uniqueid counters where the
        recording's were, so that channel names the client sends match."""
        pbx = self.sim.pbx
        for conn in conns:
            for msg in _parse(conn.received()):
                if isinstance(msg, AmiEvent) and msg.name == "Newchannel":
                    match = re.search(r"-([0-9a-f]{8})(;\d)?$", msg.get("Channel") or "")
                    uid = re.fullmatch(r"\d+\.(\d+)", msg.get("Uniqueid") or "")
                    if match is None or uid is None:
                        continue
                    seq, useq = int(match.group(1), 16), int(uid.group(1))
                    if seq > pbx._chan_seq or (seq == pbx._chan_seq and useq > pbx._uniq_seq):
                        pbx.seed_counters(channel_seq=seq, uniqueid_seq=useq)
                    return

    async def _connection(
        self,
        conn: Connection,
        index: int,
        result: ReplayResult,
        hooks: Mapping[str, Callable[[], Awaitable[None]]],
        after: Mapping[str, Callable[[], Awaitable[None]]],
    ) -> None:
        reader, writer = await asyncio.open_connection(self.sim.host, self.sim.port)
        received = bytearray()
        closed = asyncio.Event()
        grew = asyncio.Event()

        async def pump() -> None:
            try:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    received.extend(data)
                    grew.set()
            except (ConnectionError, OSError):
                pass
            finally:
                closed.set()
                grew.set()

        pump_task = asyncio.create_task(pump())
        recorded = bytearray()
        try:
            for segment in conn.segments:
                if segment.direction == FROM_PBX:
                    recorded.extend(segment.data)
                    continue
                await self._barrier(bytes(recorded), received, grew, closed)
                if closed.is_set():
                    break
                action_id = _action_id(segment.data)
                hook = hooks.get(action_id)
                if hook is not None:
                    await self._run_hook(hook, writer, received, grew)
                data = self._rekey(segment.data, bytes(recorded), bytes(received))
                writer.write(_map_bridges(data, bytes(recorded), bytes(received)))
                await writer.drain()
                later = after.get(action_id)
                if later is not None:
                    await self._await_reply(action_id, received, grew, closed)
                    await later()
            await self._barrier(bytes(recorded), received, grew, closed)
            await asyncio.sleep(0.05)
        finally:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (TimeoutError, OSError, ConnectionError):
                pass
            pump_task.cancel()
            await asyncio.gather(pump_task, return_exceptions=True)
        want, got = _parse(bytes(recorded)), _parse(bytes(received))
        result.recorded.append(want)
        result.received.append(got)
        self._compare(index, want, got, result)

    async def _await_reply(
        self, action_id: str, received: bytearray, grew: asyncio.Event, closed: asyncio.Event
    ) -> None:
        """Wait for the reply to ``action_id`` (and a list's Complete event)."""

        def done() -> bool:
            started = False
            for msg in _parse(bytes(received)):
                if msg.action_id != action_id:
                    continue
                if isinstance(msg, AmiResponse):
                    if not msg.is_list_start:
                        return True
                    started = True
                elif started and msg.get("EventList") == "Complete":
                    return True
            return False

        while not done() and not closed.is_set():
            grew.clear()
            await asyncio.wait_for(grew.wait(), self.barrier_timeout)

    async def _run_hook(
        self,
        hook: Callable[[], Awaitable[None]],
        writer: asyncio.StreamWriter,
        received: bytearray,
        grew: asyncio.Event,
    ) -> None:
        """Run ``hook`` and drop what it made the simulator send: a Ping
        after it marks the end of its events."""
        mark = len(received)
        await hook()
        writer.write(b"Action: Ping\r\nActionID: __replay_sync__\r\n\r\n")
        await writer.drain()
        marker = b"ActionID: __replay_sync__\r\n"
        while True:
            at = received.find(marker, mark)
            end = received.find(b"\r\n\r\n", at) if at >= 0 else -1
            if end >= 0:
                del received[mark : end + 4]
                return
            grew.clear()
            await asyncio.wait_for(grew.wait(), self.barrier_timeout)

    def _rekey(self, data: bytes, recorded: bytes, received: bytes) -> bytes:
        """An MD5 Login answers the recorded challenge; answer the
        simulator's instead (when the recorded key was right)."""
        key = re.search(rb"(?m)^Key: (\w+)\r?$", data)
        user = re.search(rb"(?m)^Username: (.+?)\r?$", data)
        old = re.findall(rb"Challenge: (\d+)", recorded)
        new = re.findall(rb"Challenge: (\d+)", received)
        if not (key and user and old and new):
            return data
        secret = self.secrets.get(user.group(1).decode(), "")
        if hashlib.md5(old[-1] + secret.encode()).hexdigest().encode() != key.group(1):
            return data
        fresh = hashlib.md5(new[-1] + secret.encode()).hexdigest().encode()
        return data.replace(key.group(1), fresh)

    async def _barrier(
        self, recorded: bytes, received: bytearray, grew: asyncio.Event, closed: asyncio.Event
    ) -> None:
        """Wait until the simulator sent (at least) what Asterisk had sent at
        this point, counted per (event, channel) key."""
        want = self._census(_parse(recorded))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.barrier_timeout
        while not closed.is_set():
            have = self._census(_parse(bytes(received)))
            if not want - have:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            grew.clear()
            try:
                await asyncio.wait_for(grew.wait(), remaining)
            except TimeoutError:
                return

    @staticmethod
    def _census(messages: list[AmiMessage]) -> Counter[tuple[str, str]]:
        norm = _Normaliser()
        out: Counter[tuple[str, str]] = Counter()
        for msg in messages:
            if not _compared(msg):
                continue
            n = norm.message(msg)
            d = dict(n)
            if "Event" in d:
                out[(d["Event"], _key(n))] += 1
            else:
                out[("Response", d.get("ActionID", ""))] += 1
        return out

    def _compare(
        self,
        index: int,
        want_msgs: list[AmiMessage],
        got_msgs: list[AmiMessage],
        result: ReplayResult,
    ) -> None:
        result.problems += compare_messages(f"[connection {index}]", want_msgs, got_msgs)


def compare_messages(
    prefix: str,
    want_msgs: list[AmiMessage],
    got_msgs: list[AmiMessage],
    *,
    variables: Iterable[str] = (),
    keys: Iterable[str] | None = None,
) -> list[str]:
    """The differences between what Asterisk sent and what the simulator
    sent (see the module docstring). ``variables``: Asterisk bookkeeping
    variables (of ``INTERNAL_VARIABLES``) whose VarSet events are compared
    too. ``keys``: compare only the events about these channels (names,
    as the recording has them) besides the replies; None: all."""
    keep = frozenset(variables)
    only = frozenset(keys) if keys is not None else None
    problems: list[str] = []

    def compared(msg: AmiMessage) -> bool:
        if isinstance(msg, AmiEvent) and msg.name == "VarSet":
            if (msg.get("Variable") or "") in keep:
                return True
        return _compared(msg)

    wn, gn = _Normaliser(), _Normaliser()
    want = [(m, wn.message(m)) for m in want_msgs if compared(m)]
    got = [(m, gn.message(m)) for m in got_msgs if compared(m)]
    # 1. replies, in order; the items of one list as a multiset
    want_replies = _group_lists([n for m, n in want if _is_reply(m)])
    got_replies = _group_lists([n for m, n in got if _is_reply(m)])
    for i, (w, g) in enumerate(zip(want_replies, got_replies, strict=False)):
        if isinstance(w, tuple) and isinstance(g, tuple):
            problems += _diff_message(f"{prefix} reply {i}", w, g)
        elif w != g:
            problems.append(f"{prefix} reply {i}: expected {_show(w)}\n    got {_show(g)}")
    if len(want_replies) != len(got_replies):
        rest = want_replies[len(got_replies) :] or got_replies[len(want_replies) :]
        problems.append(
            f"{prefix} {len(want_replies)} replies expected, {len(got_replies)} received;"
            f" extra/missing: {[_show(x) for x in rest]}"
        )
    # 2. events: sequences per channel / bridge
    want_seq: dict[str, list[Normalised]] = {}
    got_seq: dict[str, list[Normalised]] = {}
    want_global: Counter[Normalised] = Counter()
    got_global: Counter[Normalised] = Counter()
    for source, seqs, glob in ((want, want_seq, want_global), (got, got_seq, got_global)):
        for msg, norm in source:
            if _is_reply(msg):
                continue
            if isinstance(msg, AmiEvent) and msg.name == "OriginateResponse":
                glob[norm] += 1
                continue
            seqs.setdefault(_key(norm), []).append(norm)
    for key in sorted(set(want_seq) | set(got_seq)):
        if only is not None and key not in only:
            continue
        ws, gs = want_seq.get(key, []), got_seq.get(key, [])
        if ws == gs:
            continue
        where = f"{prefix} events about {key}"
        for i in range(max(len(ws), len(gs))):
            if i >= len(ws):
                problems.append(f"{where} #{i}: unexpected {_describe(gs[i])}")
            elif i >= len(gs):
                problems.append(f"{where} #{i}: missing {_describe(ws[i])}")
            else:
                problems += _diff_message(f"{where} #{i}", ws[i], gs[i])
    if want_global != got_global:
        for norm in want_global - got_global:
            problems.append(f"{prefix} missing {_describe(norm)}: {dict(norm)}")
        for norm in got_global - want_global:
            problems.append(f"{prefix} unexpected {_describe(norm)}: {dict(norm)}")
    return problems


def _slice(msgs: list[AmiMessage], start: str, end: str | None) -> list[AmiMessage]:
    def reply_at(action_id: str) -> int | None:
        for i, msg in enumerate(msgs):
            if isinstance(msg, AmiResponse) and msg.action_id == action_id:
                return i
        return None

    first = reply_at(start)
    if first is None:
        return []
    last = reply_at(end) if end is not None else None
    return msgs[first:last]


def _cut(conn: Connection, start: str, end: str) -> Connection:
    out = Connection(notes=list(conn.notes))
    skipping = False
    for segment in conn.segments:
        if segment.direction != FROM_PBX:
            aid = _action_id(segment.data)
            if aid == start:
                skipping = True
            elif aid == end:
                skipping = False
        if not skipping:
            out.segments.append(segment)
    return out


def _map_bridges(data: bytes, recorded: bytes, received: bytes) -> bytes:
    """Replace the recorded bridge UUIDs and MixMonitorIDs a client names
    by the simulator's (matched by order of first appearance)."""
    text = data.decode("utf-8", "replace")
    for pattern in (_UUID, _POINTER):
        used = pattern.findall(text)
        if not used:
            continue
        want = list(dict.fromkeys(pattern.findall(recorded.decode("utf-8", "replace"))))
        have = list(dict.fromkeys(pattern.findall(received.decode("utf-8", "replace"))))
        for old in used:
            if old in want and want.index(old) < len(have):
                text = text.replace(old, have[want.index(old)])
    return text.encode()


def _action_id(data: bytes) -> str:
    match = re.search(rb"(?im)^actionid:\s*(.*?)\r?$", data)
    return match.group(1).decode() if match else ""


def _group_lists(replies: list[Normalised]) -> list[Normalised | frozenset[tuple[Normalised, int]]]:
    """Fold the items of each list (between a list start and its Complete
    event) into a multiset."""
    out: list[Normalised | frozenset[tuple[Normalised, int]]] = []
    items: Counter[Normalised] | None = None
    for msg in replies:
        d = dict(msg)
        if d.get("Event") and d.get("EventList") != "Complete":
            if items is None:
                items = Counter()
            items[msg] += 1
            continue
        if items is not None:
            out.append(frozenset(items.items()))
            items = None
        out.append(msg)
    if items is not None:
        out.append(frozenset(items.items()))
    return out


def _show(x: object) -> str:
    if isinstance(x, tuple):
        return _describe(x)
    if isinstance(x, frozenset):
        return "{" + ", ".join(f"{_describe(m)} x{n}" for m, n in x) + "}"
    return repr(x)


class AgiReplayServer:
    """A FastAGI server that plays the server side of a recorded FastAGI
    transcript (``11-fastagi.txt``): session N of the recording answers the
    Nth connection. It records what the simulator (as Asterisk) sent, for
    ``compare()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.sessions = read_transcript(self.path, lf_default=True)
        self.received: list[list[str]] = []
        self.done = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._next = 0
        self.host = ""
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self._next
        self._next += 1
        got: list[str] = []
        self.received.append(got)
        try:
            if index >= len(self.sessions):
                return
            for segment in self.sessions[index].segments:
                if segment.direction == FROM_PBX:
                    for _ in segment.data.decode().splitlines() or [""]:
                        line = await asyncio.wait_for(reader.readline(), 5.0)
                        if not line:
                            return
                        got.append(line.decode().rstrip("\n"))
                else:
                    writer.write(segment.data)
                    await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            if self._next >= len(self.sessions):
                self.done.set()

    def compare(self) -> list[str]:
        """Differences between what the simulator sent and the recording."""
        problems = []
        for index, session in enumerate(self.sessions):
            want = [_agi_norm(x) for x in session.received().decode().splitlines()]
            got = [
                _agi_norm(x) for x in (self.received[index] if index < len(self.received) else [])
            ]
            for i in range(max(len(want), len(got))):
                w = want[i] if i < len(want) else "<nothing>"
                g = got[i] if i < len(got) else "<nothing>"
                if w != g:
                    problems.append(f"[FastAGI session {index + 1}] line {i}: want {w!r} got {g!r}")
        return problems


def _agi_norm(line: str) -> str:
    if line.startswith("agi_threadid:"):
        return "agi_threadid: <volatile>"
    return _UNIQUEID.sub(lambda m: f"<epoch>.{m.group(1)}", line)


async def replay_files(
    paths: Iterable[str | Path], *, dialplan: str = "lab", time_scale: float = 0.1
) -> list[ReplayResult]:
    sim = lab_simulator(dialplan=dialplan, time_scale=time_scale)
    await sim.start()
    try:
        replay = Replay(sim, secrets=LAB_SECRETS)
        return [await replay.run(p) for p in paths]
    finally:
        await sim.stop()


LAB_SECRETS = {"cti": "cti-secret", "cti-ro": "cti-ro-secret"}


def lab_simulator(*, dialplan: str = "lab", time_scale: float = 0.1) -> PbxSimulator:
    """A simulator set up like the lab Asterisk of the recordings: users
    ``cti`` (all classes) and ``cti-ro`` (read-only), no login delay;
    dialplan waits (Wait, MusicOnHold durations) shortened by ``time_scale``."""
    sim = PbxSimulator(
        dialplan=dialplan,
        users={
            "cti": _user("cti-secret", read_only=False),
            "cti-ro": _user("cti-ro-secret", read_only=True),
        },
        login_failure_delay=0.0,
    )
    sim.pbx.time_scale = time_scale
    return sim


def _user(secret: str, *, read_only: bool) -> AmiUser:
    return AmiUser(secret, ALL_CLASSES, frozenset() if read_only else ALL_CLASSES)


def main(argv: list[str]) -> int:
    """Replay the given transcripts, in order, on one simulator."""
    results = asyncio.run(replay_files(argv))
    for res in results:
        print(res.report())
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
