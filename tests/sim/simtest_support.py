"""An AMI test client (real TCP, the project's codec) and the AMI users of
the simulator tests."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from cti.ami.framing import CLOSED, NEED_DATA, AmiConnection, Role, encode
from cti.ami.messages import AmiAction, AmiEvent, AmiMessage, AmiResponse, Banner
from sim.pbx import AmiUser
from sim.pbx.model import ALL_CLASSES

TIMEOUT = 5.0


class AmiClient:
    """A small AMI client for tests: sends actions, keeps every message."""

    _ids = itertools.count(1)

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = AmiConnection(Role.CLIENT)
        self.banner: Banner | None = None
        self.messages: list[AmiMessage] = []
        self.closed = asyncio.Event()
        self._changed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                self.conn.receive_data(data)
                while True:
                    msg = self.conn.next_message()
                    if msg is NEED_DATA or msg is CLOSED:
                        break
                    if isinstance(msg, Banner):
                        self.banner = msg
                    elif isinstance(msg, AmiEvent | AmiResponse):
                        self.messages.append(msg)
                self._changed.set()
                if not data:
                    return
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            self._changed.set()

    async def _wait(self, predicate: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
        async def loop() -> Any:
            while True:
                found = predicate()
                if found:
                    return found
                if self.closed.is_set():
                    raise ConnectionError("AMI connection closed")
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(loop(), timeout)

    async def wait_banner(self) -> Banner:
        banner: Banner = await self._wait(lambda: self.banner)
        return banner

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, action: AmiAction) -> None:
        self.writer.write(encode(action))

    async def request(
        self, name: str, fields: dict[str, str] | None = None, **kw: Any
    ) -> AmiResponse:
        """Send an action with a fresh ActionID and wait for its response."""
        action_id = f"t{next(self._ids)}"
        self.send(AmiAction.build(name, fields or {}, action_id=action_id, **kw))
        return await self.response(action_id)

    async def response(self, action_id: str, timeout: float = TIMEOUT) -> AmiResponse:
        def find() -> AmiResponse | None:
            for msg in self.messages:
                if isinstance(msg, AmiResponse) and msg.action_id == action_id:
                    return msg
            return None

        response: AmiResponse = await self._wait(find, timeout)
        return response

    async def request_list(
        self, name: str, fields: dict[str, str] | None = None
    ) -> tuple[AmiResponse, list[AmiEvent], AmiEvent]:
        """A list action: the response, the items, the Complete event."""
        action_id = f"t{next(self._ids)}"
        self.send(AmiAction.build(name, fields or {}, action_id=action_id))
        response = await self.response(action_id)
        if not response.is_list_start:
            raise AssertionError(f"{name} did not start a list: {response}")

        def complete() -> AmiEvent | None:
            for msg in self.messages:
                if (
                    isinstance(msg, AmiEvent)
                    and msg.action_id == action_id
                    and msg.get("EventList") == "Complete"
                ):
                    return msg
            return None

        done: AmiEvent = await self._wait(complete)
        items = [
            m
            for m in self.messages
            if isinstance(m, AmiEvent) and m.action_id == action_id and m is not done
        ]
        return response, items, done

    def events(self, name: str | None = None, **match: str) -> list[AmiEvent]:
        return [
            m
            for m in self.messages
            if isinstance(m, AmiEvent)
            and (name is None or m.name == name)
            and all(m.get(k) == v for k, v in match.items())
        ]

    async def event(self, name: str, timeout: float = TIMEOUT, **match: str) -> AmiEvent:
        """The first event ``name`` with these header values (waits for it)."""
        found: list[AmiEvent] = await self._wait(lambda: self.events(name, **match), timeout)
        return found[0]

    async def nth_event(
        self, name: str, n: int, timeout: float = TIMEOUT, **match: str
    ) -> AmiEvent:
        """The ``n``-th (from 1) event ``name`` with these header values."""
        found: list[AmiEvent] = await self._wait(
            lambda: self.events(name, **match)[n - 1 : n], timeout
        )
        return found[0]

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (TimeoutError, OSError, ConnectionError):
            pass
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


Connect = Callable[..., Awaitable[AmiClient]]

USERS = {
    "callwright": AmiUser(
        "callwright-secret",
        frozenset({"system", "call", "dialplan"}),
        frozenset({"system", "call", "originate"}),
    ),
    "admin": AmiUser("admin-secret", ALL_CLASSES, ALL_CLASSES),
    "viewer": AmiUser("viewer-secret", ALL_CLASSES, frozenset()),
}
