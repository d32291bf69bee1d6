"""agent_desk.manager.DirectManager: a room emit reaches every client of the
room once and in order, over real sockets, without a task per recipient; an
emit that wants an acknowledgement still gets it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio  # type: ignore[import-untyped]
from aiohttp import web

from agent_desk.manager import DeskPacket, DirectManager, lighter_websocket_writer
from agent_desk.rooms import Envelope


class Server:
    def __init__(self) -> None:
        lighter_websocket_writer()  # as the runtime does
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=DirectManager(),
            serializer=DeskPacket,
            ping_interval=1,  # a long-polling GET waits at most this long
            ping_timeout=1,
        )
        self.app = web.Application()
        self.sio.attach(self.app)
        self.url = ""
        self.runner = web.AppRunner(self.app)

        @self.sio.event  # type: ignore[misc]
        async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
            await self.sio.enter_room(sid, "everyone")

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start()
    yield s
    await s.runner.cleanup()


async def _client(url: str, got: list[Any], transport: str = "websocket") -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    client.on("news", lambda data: got.append(data))
    client.on("ask", lambda data: {"answer": data["n"] * 2})
    await client.connect(url, transports=[transport])
    return client


async def _until(check: Any, what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out: {what}")


async def test_every_client_of_a_room_gets_every_emit_once_in_order(server: Server) -> None:
    inboxes: list[list[Any]] = [[] for _ in range(30)]
    clients = [await _client(server.url, inbox) for inbox in inboxes]
    tasks_before = len(asyncio.all_tasks())
    for n in range(20):
        await server.sio.emit("news", {"n": n}, to="everyone")
    # The emits created no task per recipient (the library's manager: 600).
    assert len(asyncio.all_tasks()) - tasks_before < 30
    await _until(lambda: all(len(i) == 20 for i in inboxes), "20 news for every client")
    assert all(inbox == [{"n": n} for n in range(20)] for inbox in inboxes)
    # A tuple is several arguments, as with the library's manager.
    got: list[Any] = []
    clients[0].on("pair", lambda a, b: got.append((a, b)))
    await server.sio.emit("pair", (1, "two"), to="everyone")
    await _until(lambda: got == [(1, "two")], "the two arguments")
    for client in clients:
        await client.disconnect()


async def test_skip_sid_and_a_client_gone_mid_way(server: Server) -> None:
    inboxes: list[list[Any]] = [[] for _ in range(3)]
    clients = [await _client(server.url, inbox) for inbox in inboxes]
    await server.sio.emit("news", {"n": 0}, to="everyone", skip_sid=clients[0].get_sid())
    await _until(lambda: inboxes[1] == [{"n": 0}], "the first news for the second")
    gone = clients[1].get_sid()
    await clients[1].disconnect()
    await _until(lambda: not server.sio.manager.is_connected(gone, "/"), "gone")
    await server.sio.emit("news", {"n": 1}, to="everyone")
    await _until(lambda: inboxes[2] == [{"n": 0}, {"n": 1}], "both news for the third")
    await _until(lambda: inboxes[0] == [{"n": 1}], "the second news for the first")
    assert inboxes[1] == [{"n": 0}]
    for client in (clients[0], clients[2]):
        await client.disconnect()


async def test_an_emit_with_an_acknowledgement_gets_the_answer(server: Server) -> None:
    got: list[Any] = []
    client = await _client(server.url, got)
    sid = next(iter(server.sio.manager.get_participants("/", "everyone")))[0]
    assert await server.sio.call("ask", {"n": 21}, to=sid, timeout=10) == {"answer": 42}
    await client.disconnect()


async def test_an_envelope_goes_out_as_the_text_it_was_encoded_to(server: Server) -> None:
    got: list[Any] = []
    client = await _client(server.url, got)
    envelope = Envelope.encode("everyone", 7, "news", {"name": "Zoë <b>", "n": [1.5]}, 10.0)
    await server.sio.emit("news", envelope.raw(), to="everyone")
    # Other payloads are encoded as usual by the same packet class.
    await server.sio.emit("news", {"plain": True}, to="everyone")
    await _until(lambda: len(got) == 2, "both news")
    assert got == [envelope.to_json(), {"plain": True}]
    assert got[0]["data"] == {"name": "Zoë <b>", "n": [1.5]}
    await client.disconnect()


def _writers() -> int:
    """Engine.IO's writer tasks (one per websocket connection)."""
    return sum(
        1 for t in asyncio.all_tasks() if t.get_coro().__qualname__.endswith("<locals>.writer")
    )


async def test_a_websocket_writer_ends_with_its_connection(server: Server) -> None:
    """The writer no longer wakes up on a timeout: when a client goes, its
    connection's writer ends all the same."""
    from engineio import async_socket

    assert getattr(async_socket.AsyncSocket.poll, "callwright", False)
    lighter_websocket_writer()  # a second time changes nothing
    inboxes: list[list[Any]] = [[] for _ in range(5)]
    clients = [await _client(server.url, inbox) for inbox in inboxes]
    await server.sio.emit("news", {"n": 1}, to="everyone")
    await _until(lambda: all(inbox == [{"n": 1}] for inbox in inboxes), "the news")
    assert _writers() == 5
    for client in clients[:3]:
        await client.disconnect()
    await _until(lambda: _writers() == 2, "the writers of the three gone")
    await server.sio.emit("news", {"n": 2}, to="everyone")
    await _until(lambda: inboxes[4] == [{"n": 1}, {"n": 2}], "the others still served")
    for client in clients[3:]:
        await client.disconnect()
    await _until(lambda: _writers() == 0, "every writer gone")


async def test_a_long_polling_client_still_gets_its_events(server: Server) -> None:
    got: list[Any] = []
    client = await _client(server.url, got, transport="polling")
    for n in range(3):
        await server.sio.emit("news", {"n": n}, to="everyone")
    await _until(lambda: got == [{"n": 0}, {"n": 1}, {"n": 2}], "three news over polling")
    await client.disconnect()


async def test_an_idle_websocket_is_written_at_once_and_a_busy_one_keeps_its_order(
    server: Server,
) -> None:
    """A message for a websocket whose writer waits on an empty queue goes
    out on the socket in the emit itself (no writer wake-up); with packets
    queued before it, it queues behind them: the client gets all in order."""
    from agent_desk import manager

    got: list[Any] = []
    client = await _client(server.url, got)
    polling: list[Any] = []
    poller = await _client(server.url, polling, transport="polling")
    eio = server.sio.eio
    by_transport = {s.upgraded: s for s in eio.sockets.values()}
    ws_socket, poll_socket = by_transport[True], by_transport[False]
    await _until(lambda: manager._idle_websocket(ws_socket) is not None, "the writer idle")
    assert manager._idle_websocket(poll_socket) is None  # long-polling: the library's way

    queued_before = ws_socket.queue.qsize()
    await server.sio.emit("news", {"n": 0}, to="everyone")
    assert ws_socket.queue.qsize() == queued_before  # written, not queued
    # Packets already queued (the writer has not run yet): later ones queue behind.
    for n in (1, 2):
        await ws_socket.send(
            manager.eio_packet.Packet(manager.eio_packet.MESSAGE, f'2["news",{{"n":{n}}}]')
        )
    await server.sio.emit("news", {"n": 3}, to="everyone")
    await _until(lambda: len(got) == 4 and len(polling) == 2, "every news")
    assert got == [{"n": n} for n in range(4)]
    assert polling == [{"n": 0}, {"n": 3}]
    await client.disconnect()
    await poller.disconnect()
