"""Room sequence numbers and the replay buffer (pure: the time is an argument).

Every event sent to a room is wrapped in an ``Envelope`` carrying the room's
next sequence number (1, 2, 3, ... per room, per ``epoch``). The last
``max_events`` envelopes of each room, no older than ``max_age`` seconds, are
kept so that a client that lost its connection can ask for what it missed:

* ``since(room, last_seq, now)`` returns the envelopes after ``last_seq`` in
  order (``[]`` when nothing was missed), or ``None`` when they are no longer
  all kept (or ``last_seq`` is ahead of the room: a client of an earlier
  server) - the client then needs a fresh snapshot.
* ``since_many({room: last_seq}, now)`` does the same for several rooms and
  returns the envelopes in the order they were published, or ``None`` if any
  room is too old.

``epoch`` names this log: sequence numbers restart at 1 with a new log (a
server restart), so a client must send the epoch it saw and a different one
means "snapshot".

An envelope is encoded to JSON once, when it is published: the buffer keeps
that text (in tuples of plain values), and the Socket.IO packet carries it as
it is (``RawJson``, ``agent_desk.manager.DeskPacket``). Why: the buffer holds
minutes of every room's events; as dictionaries they were about half of the
objects Python's cyclic collector tracked at 50 calls/s (a census: 12,700
envelopes with their dictionaries, lists and tuples), and each event was
encoded to JSON anyway. Strings and tuples of plain values are not tracked.
(It did not measurably shorten the collector's pauses: bench/RESULTS.md,
"Third performance round".) A replay decodes the text again.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Envelope", "RawJson", "RoomLog", "encode_data"]


def encode_data(data: Any) -> str:
    """``data`` as an envelope holds it: JSON with the envelope's separators
    (TypeError or ValueError when it is not JSON-encodable). For an event sent
    to several rooms (``RoomLog.publish``'s ``data_text``): encoded once."""
    return json.dumps(data, separators=(",", ":"))


class RawJson:
    """JSON text sent as it is, not encoded again."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


@dataclass(frozen=True, slots=True)
class Envelope:
    room: str
    seq: int
    type: str
    at: float
    text: str  # to_json(), encoded

    @classmethod
    def encode(
        cls, room: str, seq: int, type: str, data: Any, at: float, data_text: str | None = None
    ) -> Envelope:
        """The envelope of ``data`` (JSON-encodable: else TypeError or ValueError).
        ``data_text``: ``encode_data(data)``, already made; the text is then the
        same as ``data`` encoded here."""
        if data_text is None:
            body = {"room": room, "seq": seq, "type": type, "at": at, "data": data}
            return cls(room, seq, type, at, json.dumps(body, separators=(",", ":")))
        text = (
            f'{{"room":{json.dumps(room)},"seq":{seq:d},"type":{json.dumps(type)},'
            f'"at":{json.dumps(at)},"data":{data_text}}}'
        )
        return cls(room, seq, type, at, text)

    @property
    def data(self) -> Any:
        return json.loads(self.text)["data"]

    def to_json(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.text)
        return decoded

    def raw(self) -> RawJson:
        return RawJson(self.text)


# (publication order across rooms, seq, at, type, text): plain values only.
_Kept = tuple[int, int, float, str, str]


class _Room:
    __slots__ = ("buffer", "seq")

    def __init__(self) -> None:
        self.seq = 0
        self.buffer: deque[_Kept] = deque()  # oldest first


class RoomLog:
    def __init__(
        self, *, max_events: int = 1000, max_age: float = 300.0, epoch: str | None = None
    ) -> None:
        if max_events < 1 or max_age <= 0:
            raise ValueError("max_events must be at least 1 and max_age positive")
        self.max_events = max_events
        self.max_age = float(max_age)
        self.epoch = epoch if epoch is not None else secrets.token_hex(8)
        self._rooms: dict[str, _Room] = {}
        self._order = 0

    def publish(
        self, room: str, type: str, data: Any, at: float, *, data_text: str | None = None
    ) -> Envelope:
        """``data_text``: ``encode_data(data)`` when the caller has it (the same
        event to several rooms)."""
        r = self._rooms.get(room)
        if r is None:
            r = self._rooms[room] = _Room()
        # Raises (data not JSON-encodable) before anything is used.
        envelope = Envelope.encode(room, r.seq + 1, type, data, at, data_text)
        r.seq += 1
        self._order += 1
        r.buffer.append((self._order, r.seq, at, type, envelope.text))
        self._trim(r, at)
        return envelope

    def seq(self, room: str) -> int:
        """The last sequence number used in ``room`` (0: nothing sent yet)."""
        r = self._rooms.get(room)
        return 0 if r is None else r.seq

    def seqs(self, rooms: list[str] | tuple[str, ...]) -> dict[str, int]:
        return {room: self.seq(room) for room in rooms}

    def since(self, room: str, last_seq: int, now: float) -> list[Envelope] | None:
        found = self._since(room, last_seq, now)
        return None if found is None else [_envelope(room, kept) for kept in found]

    def since_many(self, rooms: Mapping[str, int], now: float) -> list[Envelope] | None:
        merged: list[tuple[str, _Kept]] = []
        for room, last_seq in rooms.items():
            found = self._since(room, last_seq, now)
            if found is None:
                return None
            merged += [(room, kept) for kept in found]
        merged.sort(key=lambda pair: pair[1][0])
        return [_envelope(room, kept) for room, kept in merged]

    def buffered(self, room: str) -> int:
        r = self._rooms.get(room)
        return 0 if r is None else len(r.buffer)

    def _since(self, room: str, last_seq: int, now: float) -> list[_Kept] | None:
        r = self._rooms.get(room)
        current = 0 if r is None else r.seq
        if last_seq < 0 or last_seq > current:
            return None
        if last_seq == current:
            return []
        assert r is not None
        self._trim(r, now)
        if not r.buffer or r.buffer[0][1] > last_seq + 1:
            return None
        skip = last_seq + 1 - r.buffer[0][1]
        return list(itertools.islice(r.buffer, skip, None))

    def _trim(self, r: _Room, now: float) -> None:
        buffer = r.buffer
        while len(buffer) > self.max_events:
            buffer.popleft()
        oldest = now - self.max_age
        while buffer and buffer[0][2] < oldest:
            buffer.popleft()


def _envelope(room: str, kept: _Kept) -> Envelope:
    _, seq, at, type, text = kept
    return Envelope(room, seq, type, at, text)
