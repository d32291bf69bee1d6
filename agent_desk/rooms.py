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
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Envelope", "RoomLog"]


@dataclass(frozen=True, slots=True)
class Envelope:
    room: str
    seq: int
    type: str
    data: Any
    at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "room": self.room,
            "seq": self.seq,
            "type": self.type,
            "at": self.at,
            "data": self.data,
        }


class _Room:
    __slots__ = ("buffer", "seq")

    def __init__(self) -> None:
        self.seq = 0
        # (publication order across rooms, envelope), oldest first
        self.buffer: deque[tuple[int, Envelope]] = deque()


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

    def publish(self, room: str, type: str, data: Any, at: float) -> Envelope:
        r = self._rooms.get(room)
        if r is None:
            r = self._rooms[room] = _Room()
        r.seq += 1
        self._order += 1
        envelope = Envelope(room, r.seq, type, data, at)
        r.buffer.append((self._order, envelope))
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
        return None if found is None else [e for _, e in found]

    def since_many(self, rooms: Mapping[str, int], now: float) -> list[Envelope] | None:
        merged: list[tuple[int, Envelope]] = []
        for room, last_seq in rooms.items():
            found = self._since(room, last_seq, now)
            if found is None:
                return None
            merged += found
        merged.sort(key=lambda pair: pair[0])
        return [e for _, e in merged]

    def buffered(self, room: str) -> int:
        r = self._rooms.get(room)
        return 0 if r is None else len(r.buffer)

    def _since(self, room: str, last_seq: int, now: float) -> list[tuple[int, Envelope]] | None:
        r = self._rooms.get(room)
        current = 0 if r is None else r.seq
        if last_seq < 0 or last_seq > current:
            return None
        if last_seq == current:
            return []
        assert r is not None
        self._trim(r, now)
        if not r.buffer or r.buffer[0][1].seq > last_seq + 1:
            return None
        skip = last_seq + 1 - r.buffer[0][1].seq
        return list(itertools.islice(r.buffer, skip, None))

    def _trim(self, r: _Room, now: float) -> None:
        buffer = r.buffer
        while len(buffer) > self.max_events:
            buffer.popleft()
        oldest = now - self.max_age
        while buffer and buffer[0][1].at < oldest:
            buffer.popleft()
