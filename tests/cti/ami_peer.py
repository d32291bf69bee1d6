"""A scriptable AMI peer over real TCP, for link tests that need byte-level
control the simulator does not offer (a UTF-8 character split across two TCP
writes, a reply that never comes, a half-open socket). It speaks Asterisk's
framing through the same codec, in the server role."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cti.ami.framing import CLOSED, NEED_DATA, AmiConnection, Role, encode
from cti.ami.messages import AmiAction, AmiEvent, AmiResponse, Banner

Handler = Callable[["PeerSession", AmiAction], bytes | None]


@dataclass
class PeerSession:
    writer: asyncio.StreamWriter
    logged_in: bool = False
    challenge: str = "123456789"
    close_after_reply: bool = False

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)


@dataclass
class AmiPeer:
    secret: str = "s3cret"
    username: str = "callwright"
    # Answers for actions after login, by lower-cased action name.
    handlers: dict[str, Handler] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)  # actions never answered
    received: list[AmiAction] = field(default_factory=list)
    sessions: list[PeerSession] = field(default_factory=list)
    frozen: bool = False
    logins: int = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._logged_in_event = asyncio.Event()

    async def stop(self) -> None:
        self._server.close()
        self.drop()
        # A client that never closes its side must not hang the teardown.
        try:
            await asyncio.wait_for(self._server.wait_closed(), 2)
        except TimeoutError:
            pass

    def drop(self) -> None:
        for session in self.sessions:
            session.writer.close()
        self.sessions.clear()

    async def wait_login(self, count: int = 1, timeout: float = 10.0) -> None:
        async def wait() -> None:
            while self.logins < count:
                self._logged_in_event.clear()
                await self._logged_in_event.wait()

        await asyncio.wait_for(wait(), timeout)

    def broadcast(self, data: bytes) -> None:
        for session in self.sessions:
            session.write(data)

    def event(self, name: str, **headers: str) -> bytes:
        return encode(AmiEvent.build(name, [(k.replace("_", "-"), v) for k, v in headers.items()]))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = PeerSession(writer)
        self.sessions.append(session)
        codec = AmiConnection(Role.SERVER)
        writer.write(codec.send(Banner("Asterisk Call Manager/11.0.0")))
        try:
            await self._session_loop(session, codec, reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()
            if session in self.sessions:
                self.sessions.remove(session)

    async def _session_loop(
        self,
        session: PeerSession,
        codec: AmiConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if self.frozen:
                continue  # a half-open peer: reads, never answers
            codec.receive_data(data)
            while True:
                message = codec.next_message()
                if message is NEED_DATA:
                    break
                if message is CLOSED:
                    writer.close()
                    return
                assert isinstance(message, AmiAction)
                self.received.append(message)
                reply = self._answer(session, message)
                if reply:
                    session.write(reply)
                if session.close_after_reply:
                    # Asterisk hangs up after refusing a Login (01-login.txt).
                    await writer.drain()
                    return

    def _answer(self, session: PeerSession, action: AmiAction) -> bytes | None:
        name = action.name.lower()
        aid = action.action_id
        if name == "challenge":
            return encode(AmiResponse.build("Success", aid, [("Challenge", session.challenge)]))
        if name == "login":
            if action.get("AuthType", "").lower() == "md5":
                expected = hashlib.md5((session.challenge + self.secret).encode()).hexdigest()
                ok = action.get("Key") == expected
            else:
                ok = action.get("Secret") == self.secret
            ok = ok and action.get("Username") == self.username
            if not ok:
                return encode(
                    AmiResponse.build("Error", aid, [("Message", "Authentication failed")])
                )
            session.logged_in = True
            self.logins += 1
            self._logged_in_event.set()
            return encode(
                AmiResponse.build("Success", aid, [("Message", "Authentication accepted")])
            ) + self.event("FullyBooted", Privilege="system,all", Status="Fully Booted")
        if not session.logged_in:
            return encode(AmiResponse.build("Error", aid, [("Message", "Permission denied")]))
        if name in self.silent:
            return None
        handler = self.handlers.get(name)
        if handler is not None:
            return handler(session, action)
        if name == "ping":
            return encode(
                AmiResponse.build("Success", aid, [("Ping", "Pong"), ("Timestamp", "1.0")])
            )
        if name == "coreshowchannels":
            return list_reply(aid, "CoreShowChannel", "CoreShowChannelsComplete", [])
        return encode(
            AmiResponse.build(
                "Error",
                aid,
                [
                    (
                        "Message",
                        f"Invalid/unknown command: {action.name}. "
                        "Use Action: ListCommands to show available commands.",
                    )
                ],
            )
        )


def list_reply(
    action_id: str | None, item: str, complete: str, items: list[list[tuple[str, str]]]
) -> bytes:
    out = encode(
        AmiResponse.build(
            "Success",
            action_id,
            [("EventList", "start"), ("Message", "Channels will follow")],
        )
    )
    for headers in items:
        out += encode(AmiEvent((("Event", item), ("ActionID", action_id or ""), *headers)))
    out += encode(
        AmiEvent(
            (
                ("Event", complete),
                ("ActionID", action_id or ""),
                ("EventList", "Complete"),
                ("ListItems", str(len(items))),
            )
        )
    )
    return out


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` is true (a condition we cannot subscribe to)."""

    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)
