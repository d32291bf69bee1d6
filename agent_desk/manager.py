"""The Socket.IO client manager of the desk, for one process.

python-socketio's ``AsyncManager.emit`` creates one asyncio task per
recipient and waits for all of them; each task only puts the encoded packet
on that client's Engine.IO queue (an unbounded ``asyncio.Queue``: the put
never waits), from which the client's own writer task sends it. For a room of
1,000 agents that is 1,000 tasks created, scheduled and awaited to enqueue
1,000 references to the same packet; with the offers, reservations and
per-second figures of a busy contact center, task machinery was the largest
item of the event loop's profile (bench/RESULTS.md, "Third performance
round"). ``DirectManager`` enqueues for each recipient in turn, in one task:
the same packets, the same order per client, the same writer tasks. An emit
that asks for an acknowledgement goes the library's way. A message-queue
manager (``AsyncRedisManager``, several nodes) is used as it is.
"""

from __future__ import annotations

import json
from typing import Any

import socketio  # type: ignore[import-untyped]
from engineio import packet as eio_packet  # type: ignore[import-untyped]
from socketio import packet

from agent_desk.rooms import RawJson

__all__ = ["DeskPacket", "DirectManager"]


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
        for sid, eio_sid in list(self.get_participants(namespace, room)):
            if sid in skip:
                continue
            for frame in frames:
                await send(eio_sid, frame)
