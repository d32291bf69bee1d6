"""``PbxSimulator``: an AMI server that behaves like Asterisk 22.10.1, with a
simulated PBX behind it that tests, the demo and benchmarks script.

The AMI side reads actions with ``cti.ami.framing.AmiConnection(Role.SERVER)``
and writes with ``encode()``: banner ``Asterisk Call Manager/11.0.0``, Login
(plain and Challenge/MD5), ``Events:`` masks, the Filter action, write-class
checks per action, list actions with EventList framing, and the error texts of
``tests/fixtures/ami/``. See ``sim/pbx/engine.py`` for the call side.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from cti.ami.framing import CLOSED, NEED_DATA, AmiConnection, Role, encode
from cti.ami.messages import AmiAction, AmiEvent, AmiMessage, AmiResponse, Banner
from sim.pbx.actions import ACTIONS
from sim.pbx.dialplan import DIALPLANS
from sim.pbx.engine import DeviceConfig, Pbx
from sim.pbx.model import ALL_CLASSES, AmiUser, SimChannel, SpySession

__all__ = ["DEFAULT_USERS", "AmiSession", "PbxSimulator"]

log = logging.getLogger(__name__)

BANNER = "Asterisk Call Manager/11.0.0"

# The [callwright] user of docs/asterisk/manager.conf.
CALLWRIGHT_READ = frozenset({"system", "call", "dialplan"})
CALLWRIGHT_WRITE = frozenset({"system", "call", "originate"})
DEFAULT_USERS: Mapping[str, AmiUser] = {
    "callwright": AmiUser("callwright-secret", CALLWRIGHT_READ, CALLWRIGHT_WRITE)
}

MAX_WRITE_BUFFER = 32 * 1024 * 1024

_TRUE = {"yes", "true", "y", "t", "1", "on"}
_FALSE = {"no", "false", "n", "f", "0", "off"}


def _tv(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


class AmiSession:
    """One AMI client connection."""

    def __init__(
        self, sim: PbxSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sim = sim
        self.reader = reader
        self.writer = writer
        self.conn = AmiConnection(Role.SERVER)
        self.authenticated = False
        self.username = ""
        self.user: AmiUser | None = None
        self.send_events: frozenset[str] = frozenset()
        self.challenge = ""
        self.include_filters: list[re.Pattern[str]] = []
        self.exclude_filters: list[re.Pattern[str]] = []
        self.closed = False
        self._gone = asyncio.Event()  # set when the session is closed or aborted
        self.started = time.time()
        self.session_id = f"0x{random.getrandbits(44) | 0x7F0000000000:x}"
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        local = writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        self.peer_host, self.peer_port = str(peer[0]), int(peer[1])
        self.local_host, self.local_port = str(local[0]), int(local[1])
        self.task: asyncio.Task[None] | None = None

    # -- output ----------------------------------------------------------

    def reply(self, message: AmiMessage) -> None:
        self._write(encode(message))

    def _write(self, data: bytes) -> None:
        if self.closed or self.sim.frozen:
            return
        transport = self.writer.transport
        if transport.is_closing():
            return
        self.writer.write(data)
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning(
                "AMI client %s:%s does not read; dropping it", self.peer_host, self.peer_port
            )
            self.abort()

    def deliver(self, cls: str, data: bytes, text: Callable[[], str]) -> None:
        if not self.authenticated or self.closed or cls not in self.send_events:
            return
        if self.include_filters or self.exclude_filters:
            body = text()
            if self.include_filters and not any(f.search(body) for f in self.include_filters):
                return
            if any(f.search(body) for f in self.exclude_filters):
                return
        self._write(data)

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._gone.set()
        self.writer.transport.abort()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._gone.set()
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (TimeoutError, OSError, ConnectionError):
            pass

    # -- event masks -------------------------------------------------------

    def set_eventmask(self, mask: str) -> bool | None:
        """Asterisk's set_eventmask: None for an empty mask ("Invalid event
        mask"), else whether events are now on."""
        if not mask:
            return None
        read = self.user.read if self.user is not None else frozenset()
        lowered = mask.strip().lower()
        wanted: frozenset[str]
        if lowered.isdigit():
            wanted = ALL_CLASSES if int(lowered) else frozenset()
        elif lowered in _FALSE:
            wanted = frozenset()
        elif lowered in _TRUE:
            wanted = ALL_CLASSES
        else:
            names = {part.strip() for part in mask.split(",")}
            wanted = ALL_CLASSES if "all" in names else frozenset(names & ALL_CLASSES)
        self.send_events = read & wanted
        return bool(wanted)

    # -- input -------------------------------------------------------------

    async def run(self) -> None:
        self.reply_banner()
        try:
            while not self.closed:
                await self.sim.thawed.wait()
                try:
                    data = await self.reader.read(65536)
                except (ConnectionError, OSError):
                    data = b""
                await self.sim.thawed.wait()
                self.conn.receive_data(data)
                while not self.closed:
                    message = self.conn.next_message()
                    if message is NEED_DATA:
                        break
                    if message is CLOSED:
                        return
                    if isinstance(message, AmiAction):
                        await self.handle(message)
                if not data:
                    return
        finally:
            self.sim._forget(self)
            if not self.closed:
                await self.close()

    def reply_banner(self) -> None:
        self._write(self.conn.send(Banner(BANNER)))

    async def handle(self, action: AmiAction) -> None:
        self.sim.ami_actions_received.append(action)
        self.sim.pbx.changed.set()  # wakes wait_for_channels-style waiters
        name = next((v for v in action.get_all("Action") if v.strip()), "").strip()
        if not name:
            self._error(action, "Missing action in request")
            self._bad_format("NONE")
            return
        lname = name.lower()
        if not self.authenticated and lname not in ("login", "logoff", "challenge"):
            self._error(action, "Permission denied")
            return
        if lname == "login":
            await self._login(action)
            return
        if lname == "logoff":
            self.reply(
                AmiResponse.build(
                    "Goodbye", action.action_id or None, [("Message", "Thanks for all the fish.")]
                )
            )
            await self.close()
            return
        if lname == "challenge":
            if (action.get("AuthType") or "").lower() != "md5":
                self._error(action, "Must specify AuthType")
                return
            if not self.challenge:
                self.challenge = str(random.randrange(100_000_000, 2_000_000_000))
            self.reply(
                AmiResponse.build(
                    "Success", action.action_id or None, [("Challenge", self.challenge)]
                )
            )
            return
        spec = ACTIONS.get(lname)
        if spec is None:
            self._error(
                action,
                f"Invalid/unknown command: {name}."
                " Use Action: ListCommands to show available commands.",
            )
            self._bad_format(name)
            return
        write = self.user.write if self.user is not None else frozenset()
        if spec.classes and not (spec.classes & write):
            self._error(action, "Permission denied")
            return
        try:
            await spec.handler(self, action)
        except Exception:
            log.exception("simulated action %s failed", name)
            self._error(action, "Internal error")

    def _error(self, action: AmiAction, message: str) -> None:
        self.reply(AmiResponse.build("Error", action.action_id or None, [("Message", message)]))

    def _bad_format(self, request: str) -> None:
        if not self.authenticated:
            return
        now = time.time()
        self.sim.emit(
            "RequestBadFormat",
            "security",
            [
                ("EventTV", _tv(now)),
                ("Severity", "Error"),
                ("Service", "AMI"),
                ("EventVersion", "1"),
                ("SessionID", self.session_id),
                ("LocalAddress", f"IPV4/TCP/{self.local_host}/{self.local_port}"),
                ("RemoteAddress", f"IPV4/TCP/{self.peer_host}/{self.peer_port}"),
                ("RequestType", f"Action: {request}"),
                ("SessionTV", _tv(self.started)),
                ("AccountID", self.username),
            ],
        )

    async def _login(self, action: AmiAction) -> None:
        if self.authenticated:
            self.reply(
                AmiResponse.build(
                    "Success", action.action_id or None, [("Message", "Already authenticated")]
                )
            )
            return
        username = action.get("Username") or ""
        user = self.sim.users.get(username) if username else None
        ok = False
        if user is not None:
            if (action.get("AuthType") or "").lower() == "md5":
                key = action.get("Key") or ""
                if key and self.challenge:
                    digest = hashlib.md5((self.challenge + user.secret).encode()).hexdigest()
                    ok = key == digest
            else:
                ok = (action.get("Secret") or "") == user.secret
        if not ok:
            if self.sim.login_failure_delay > 0:
                # Asterisk sleeps before refusing; a dropped link ends the wait.
                try:
                    await asyncio.wait_for(self._gone.wait(), self.sim.login_failure_delay)
                except TimeoutError:
                    pass
            self._error(action, "Authentication failed")
            await self.close()
            return
        assert user is not None
        self.authenticated = True
        self.username = username
        self.user = user
        self.started = time.time()
        events = action.get("Events") or ""
        if events:
            self.set_eventmask(events)
        else:
            self.send_events = user.read
        self.reply(
            AmiResponse.build(
                "Success", action.action_id or None, [("Message", "Authentication accepted")]
            )
        )
        if "system" in self.send_events:
            uptime = str(int(time.time() - self.sim.pbx.started))
            self.reply(
                AmiEvent(
                    (
                        ("Event", "FullyBooted"),
                        ("Privilege", "system,all"),
                        ("Uptime", uptime),
                        ("LastReload", uptime),
                        ("Status", "Fully Booted"),
                    )
                )
            )
        now = time.time()
        self.sim.emit(
            "SuccessfulAuth",
            "security",
            [
                ("EventTV", _tv(now)),
                ("Severity", "Informational"),
                ("Service", "AMI"),
                ("EventVersion", "1"),
                ("AccountID", username),
                ("SessionID", self.session_id),
                ("LocalAddress", f"IPV4/TCP/{self.local_host}/{self.local_port}"),
                ("RemoteAddress", f"IPV4/TCP/{self.peer_host}/{self.peer_port}"),
                ("UsingPassword", "0"),
                ("SessionTV", _tv(self.started)),
            ],
        )


class PbxSimulator:
    """An Asterisk 22 stand-in: an AMI server plus a scriptable PBX.

    ``users``: AMI users (default: ``callwright`` / ``callwright-secret`` with
    the classes of docs/asterisk/manager.conf). ``agent_devices``: the PJSIP
    endpoints agents use (auto-answer after ``answer_delay`` seconds, see
    ``set_device``). ``agi_url``: inbound calls run AGI against it before
    reaching the holding point. ``dialplan``: "callwright" (the default) or
    "lab" (the transcripts' lab dialplan, Local channels). ``spool_dir``:
    Asterisk's spool directory; MixMonitor writes real WAV files (a tone,
    silence while muted) under its ``monitor/`` folder, see
    ``sim/pbx/recording.py``; without it no file is written. ``login_failure_delay``:
    Asterisk sleeps 1 s before refusing a Login.
    ``transfer_target_missing``: the share (0 to 1) of AttendedTransfer
    events sent without their TransferTarget* headers, as a real Asterisk
    22.10.1 does about one time in four (a race: tests/fixtures/ami-real/05);
    0 (the default) always sends them, 1 never does.
    """

    def __init__(
        self,
        *,
        users: Mapping[str, AmiUser] | None = None,
        agent_devices: Iterable[str] = ("1001", "1002", "1003"),
        answer_delay: float = 0.05,
        agi_url: str | None = None,
        dialplan: str = "callwright",
        spool_dir: str | None = None,
        login_failure_delay: float = 1.0,
        transfer_target_missing: float = 0.0,
    ) -> None:
        if dialplan not in DIALPLANS:
            raise ValueError(f"unknown dialplan {dialplan!r}; use one of {sorted(DIALPLANS)}")
        self.users: dict[str, AmiUser] = dict(DEFAULT_USERS if users is None else users)
        self.login_failure_delay = login_failure_delay
        self.pbx = Pbx(
            self.emit,
            dialplan=DIALPLANS[dialplan],
            endpoints=agent_devices,
            answer_delay=answer_delay,
            agi_url=agi_url,
            spool_dir=spool_dir,
        )
        self.pbx.transfer_target_missing = transfer_target_missing
        self.host = ""
        self.port = 0
        self.ami_actions_received: list[AmiAction] = []
        self.recent_events: collections.deque[AmiEvent] = collections.deque(maxlen=5000)
        self.sessions: list[AmiSession] = []
        self.frozen = False
        self.thawed = asyncio.Event()
        self.thawed.set()
        self._server: asyncio.Server | None = None

    # -- lifecycle ---------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._client, host, port)
        sock = self._server.sockets[0].getsockname()
        self.host, self.port = str(sock[0]), int(sock[1])
        log.info("PBX simulator listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Close the listener and every connection; end every call task."""
        if self._server is not None:
            self._server.close()
        self.thawed.set()
        sessions = list(self.sessions)
        for session in sessions:
            session.abort()
        tasks = [s.task for s in sessions if s.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await self.pbx.shutdown()

    async def __aenter__(self) -> PbxSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = AmiSession(self, reader, writer)
        session.task = asyncio.current_task()
        self.sessions.append(session)
        try:
            await session.run()
        except asyncio.CancelledError:
            # This task belongs to asyncio's stream server, whose done-callback
            # treats a cancelled task as an error: end it normally instead.
            session.abort()
        except Exception:
            log.exception("AMI session failed")
            session.abort()

    def _forget(self, session: AmiSession) -> None:
        if session in self.sessions:
            self.sessions.remove(session)

    # -- events ------------------------------------------------------------

    def emit(self, name: str, cls: str, headers: list[tuple[str, str]]) -> None:
        event = AmiEvent((("Event", name), ("Privilege", f"{cls},all"), *headers))
        self.recent_events.append(event)
        if not self.sessions:
            return
        data = encode(event)
        cache: list[str] = []

        def text() -> str:
            if not cache:
                cache.append(data.decode("utf-8", "replace"))
            return cache[0]

        for session in list(self.sessions):
            session.deliver(cls, data, text)

    # -- scripting the phone side -------------------------------------------

    async def inbound_call(
        self, caller_num: str, caller_name: str = "", did: str = "5000"
    ) -> SimChannel:
        """A customer calls ``did`` over the trunk; returns the customer's
        channel once it waits at the holding point (MusicOnHoldStart sent)."""
        return await self.pbx.inbound_call(caller_num, caller_name, did)

    async def customer_hangup(self, channel_name: str) -> None:
        """The far end of ``channel_name`` hangs up (cause 16); returns once
        the channel is gone."""
        ch = self.pbx.find(channel_name)
        if ch is None:
            raise LookupError(f"no channel {channel_name}")
        self.pbx.far_end_hangup(ch)
        await self.pbx.wait_for(lambda: ch.hungup)

    async def device_hangup(self, device: str) -> None:
        """The agent puts down the phone of ``device`` (every call on it); a
        ringing phone declines the call (DialEnd BUSY)."""
        chans = self.pbx.channels_of_device(device)
        for ch in chans:
            self.pbx.far_end_hangup(ch)
        await self.pbx.wait_for(lambda: all(c.hungup for c in chans))

    async def device_answer(self, device: str) -> bool:
        """Pick up a ringing phone of ``device`` (one set with auto_answer=False)."""
        return self.pbx.answer_device(device)

    def set_device(
        self, device: str, *, auto_answer: bool = True, reachable: bool = True, busy: bool = False
    ) -> None:
        """How the phone of ``device`` (an agent endpoint, or an external
        number dialed over the trunk) behaves on the next calls."""
        before = self.pbx.device_state(device) if device in self.pbx.endpoints else None
        self.pbx.devices[device] = DeviceConfig(
            auto_answer=auto_answer, reachable=reachable, busy=busy
        )
        if before is not None:
            after = self.pbx.device_state(device)
            if after != before:
                self.emit(
                    "DeviceStateChange", "call", [("Device", f"PJSIP/{device}"), ("State", after)]
                )

    def add_endpoint(self, device: str, *, auto_answer: bool = True) -> None:
        """Another PJSIP endpoint (a supervisor's phone, say), idle."""
        self.pbx.endpoints.add(device)
        self.pbx.devices[device] = DeviceConfig(auto_answer=auto_answer)

    def spies(self) -> list[SpySession]:
        """ChanSpy() sessions in progress: who listens to which channel, in
        which mode ("listen", "whisper", "barge")."""
        return list(self.pbx.spy_sessions.values())

    def send_dtmf(self, channel_name: str, digits: str) -> None:
        """The caller on ``channel_name`` presses keys (read by AGI GET DATA /
        WAIT FOR DIGIT)."""
        ch = self.pbx.find(channel_name)
        if ch is None:
            raise LookupError(f"no channel {channel_name}")
        for digit in digits:
            self.pbx.ev_chan(
                "DTMFBegin", ch, [("Digit", digit), ("Direction", "Received")], cls="dtmf"
            )
            self.pbx.ev_chan(
                "DTMFEnd",
                ch,
                [("Digit", digit), ("DurationMs", "100"), ("Direction", "Received")],
                cls="dtmf",
            )
            ch.dtmf_queue.append(digit)
        ch.wake()

    def channels(self) -> list[SimChannel]:
        return list(self.pbx.channels.values())

    def channel(self, name: str) -> SimChannel | None:
        return self.pbx.find(name)

    async def wait_for_channels(
        self, predicate: Callable[[list[SimChannel]], bool], timeout: float = 5.0
    ) -> list[SimChannel]:
        await self.pbx.wait_for(lambda: predicate(self.channels()), timeout)
        return self.channels()

    # -- the AMI link ----------------------------------------------------------

    async def drop_connections(self) -> None:
        """Close every AMI client connection now (as if Asterisk restarted)."""
        sessions = list(self.sessions)
        for session in sessions:
            session.abort()
        tasks = [
            s.task for s in sessions if s.task is not None and s.task is not asyncio.current_task()
        ]
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

    def freeze_connections(self, frozen: bool = True) -> None:
        """Keep every socket open but stop reading actions and sending
        anything (a half-open link). Events emitted meanwhile are lost;
        actions sent meanwhile are answered after ``freeze_connections(False)``."""
        self.frozen = frozen
        if frozen:
            self.thawed.clear()
        else:
            self.thawed.set()
