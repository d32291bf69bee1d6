"""The Socket.IO client manager of the desk, for one process.

python-socketio's ``AsyncManager.emit`` creates one asyncio task per
recipient and waits for all of them; each task only puts the encoded packet
on that client's Engine.IO queue (an unbounded ``asyncio.Queue``: the put
never waits), from which the client's own writer task sends it. For a room of
1,000 agents that is 1,000 tasks created, scheduled and awaited to enqueue
1,000 references to the same packet; with the offers, reservations and
per-second figures of a busy contact center, task machinery was the largest
item of the event loop's profile (bench/RESULTS.md, "Third performance
round"). ``DirectManager`` goes through the recipients in turn, in one task:
the same packets, the same order per client. For a websocket client whose
writer task waits on an empty queue it writes the packet on the socket at
once (``lighter_websocket_writer``); otherwise it enqueues it. An emit
that asks for an acknowledgement goes the library's way. A message-queue
manager (``AsyncRedisManager``, several nodes) is used as it is.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import socketio  # type: ignore[import-untyped]
from engineio import packet as eio_packet  # type: ignore[import-untyped]
from socketio import packet

from agent_desk.rooms import RawJson

__all__ = ["DeskPacket", "DirectManager", "lighter_websocket_writer"]


class _Json:
    """``json`` for Socket.IO packets: an event whose one argument is
    ``RawJson`` (a room envelope, encoded when it was published:
    agent_desk.rooms) is written around that text, not encoded again."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        if type(obj) is list and len(obj) == 2 and type(obj[1]) is RawJson:
            return f"[{json.dumps(obj[0])},{obj[1].text}]"
        return json.dumps(obj, **kwargs)

    loads = staticmethod(json.loads)


class DeskPacket(packet.Packet):  # type: ignore[misc]
    """The desk server's packets (``AsyncServer(serializer=DeskPacket)``)."""

    json = _Json


class DirectManager(socketio.AsyncManager):  # type: ignore[misc]
    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        room = to or room
        if namespace not in self.rooms:
            return
        # As AsyncManager.emit: a tuple is several arguments, anything else one.
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        encoded = self.server.packet_class(
            packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        frames = [
            eio_packet.Packet(eio_packet.MESSAGE, p)
            for p in (encoded if isinstance(encoded, list) else [encoded])
        ]
        send = self.server._send_eio_packet
        sockets = self.server.eio.sockets
        for sid, eio_sid in list(self.get_participants(namespace, room)):
            if sid in skip:
                continue
            ws = _idle_websocket(sockets.get(eio_sid))
            if ws is not None:
                try:
                    for frame in frames:
                        await ws.send(frame.encode())
                    continue
                except Exception:  # the writer finds the socket broken and ends it
                    pass
            for frame in frames:
                await send(eio_sid, frame)


def _idle_websocket(socket: Any) -> Any:
    """The client's websocket when a message can be written on it at once
    (lighter_websocket_writer): the connection is a websocket, its writer
    task waits on an empty queue, so nothing queued would come after."""
    ws = getattr(socket, "callwright_ws", None)
    if ws is None or socket.closed or socket.upgrading or not socket.upgraded:
        return None
    queue = socket.queue
    # asyncio.Queue keeps who waits in get() in _getters (CPython 3.11's, as
    # installed; tests/desk/test_manager.py fails if that changes).
    if queue.empty() and any(not waiter.done() for waiter in queue._getters):
        return ws
    return None


def lighter_websocket_writer() -> None:
    """Replace python-engineio's ``AsyncSocket.poll`` (process-wide, once) by
    one that, for a websocket connection, waits on the client's queue
    directly instead of through ``asyncio.wait_for``; and keep each socket's
    websocket on it while it is open, so that ``DirectManager`` writes a
    message on it at once when the socket's writer is idle, instead of
    queueing it for the writer task to wake up to: one event-loop pass less
    for every message, the screen-pop's offer among them.

    Why by hand: Engine.IO's writer task calls ``poll`` once per message it
    sends, and ``wait_for`` makes a task, a timer and their futures each time,
    which then wait (seconds, with 1,000 agents) for the client's next
    message: the largest share of what Python's collector walked at 50
    calls/s, and 5% of the event loop's time (bench/RESULTS.md, "Third
    performance round"). The timeout only ever fired on a connection whose
    reader had gone without telling the writer, and the reader always does:
    when the websocket closes it queues ``None``, which ends the writer
    (``AsyncSocket._websocket_handler``). Long-polling keeps the library's
    ``poll``: there the timeout ends a GET that has nothing to send.
    """
    from engineio import async_socket
    from engineio import exceptions as eio_exceptions

    cls = async_socket.AsyncSocket
    if getattr(cls.poll, "callwright", False):
        return
    library_poll = cls.poll

    async def poll(self: Any) -> list[Any]:
        if not self.upgraded:
            return await library_poll(self)  # type: ignore[no-any-return]
        try:
            first = await self.queue.get()
        except asyncio.CancelledError:
            raise eio_exceptions.QueueEmpty() from None  # as the library's: the writer ends
        self.queue.task_done()
        if first is None:
            return []
        packets = [first]
        while True:  # as the library's: everything queued, up to a None
            try:
                pkt = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            self.queue.task_done()
            if pkt is None:
                self.queue.put_nowait(None)
                break
            packets.append(pkt)
        return packets

    library_handler = cls._websocket_handler

    async def websocket_handler(self: Any, ws: Any) -> Any:
        # Known while it lasts, so that DirectManager writes on it at once
        # when the writer is idle (_idle_websocket).
        self.callwright_ws = ws
        try:
            return await library_handler(self, ws)
        finally:
            self.callwright_ws = None

    poll.callwright = True  # type: ignore[attr-defined]
    cls.poll = poll
    cls._websocket_handler = websocket_handler
