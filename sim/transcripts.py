"""Read the recorded Asterisk transcripts (../shared/reference/asterisk-ami/).

A transcript holds one or more TCP connections. Each wire line is prefixed with
``<<< `` (Asterisk -> client) or ``>>> `` (client -> Asterisk); ``### `` lines
are recorder notes, and ``### open TCP connection`` / ``### connection N``
notes start a new connection. AMI lines end in CRLF unless marked
`` [LF-only]``; FastAGI lines (``lf_default=True``) end in LF unless marked
`` [CRLF]``. `` [NO-EOL]`` means no line ending at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Connection", "Segment", "parse_transcript", "read_transcript"]

FROM_PBX = "<<<"
TO_PBX = ">>>"


@dataclass(frozen=True, slots=True)
class Segment:
    direction: str  # "<<<" from Asterisk, ">>>" to Asterisk
    data: bytes


@dataclass(slots=True)
class Connection:
    notes: list[str] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)

    def received(self) -> bytes:
        """Every byte Asterisk sent on this connection, in order."""
        return b"".join(s.data for s in self.segments if s.direction == FROM_PBX)

    def sent(self) -> bytes:
        """Every byte the client sent on this connection, in order."""
        return b"".join(s.data for s in self.segments if s.direction == TO_PBX)


def parse_transcript(text: str, *, lf_default: bool = False) -> list[Connection]:
    connections: list[Connection] = [Connection()]
    for raw in text.splitlines():
        if raw.startswith("### "):
            note = raw[4:]
            lowered = note.lower()
            starts_new = lowered.startswith("open tcp connection") or (
                lowered.startswith("fastagi session") and "connection" in lowered
            )
            if starts_new and connections[-1].segments:
                connections.append(Connection())
            connections[-1].notes.append(note)
            continue
        if raw.startswith("#") or not raw.strip():
            continue
        direction = raw[:3]
        if direction not in (FROM_PBX, TO_PBX):
            continue
        body = raw[4:] if len(raw) > 3 else ""
        eol = b"\n" if lf_default else b"\r\n"
        for marker, ending in ((" [LF-only]", b"\n"), (" [CRLF]", b"\r\n"), (" [NO-EOL]", b"")):
            if body.endswith(marker):
                body = body[: -len(marker)]
                eol = ending
                break
        segment = Segment(direction, body.encode("utf-8") + eol)
        conn = connections[-1]
        # Merge consecutive lines of one direction into one segment.
        if conn.segments and conn.segments[-1].direction == direction:
            conn.segments[-1] = Segment(direction, conn.segments[-1].data + segment.data)
        else:
            conn.segments.append(segment)
    return [c for c in connections if c.segments]


def read_transcript(path: str | Path, *, lf_default: bool | None = None) -> list[Connection]:
    path = Path(path)
    if lf_default is None:
        lf_default = path.name == "11-fastagi.txt"
    return parse_transcript(path.read_text(encoding="utf-8"), lf_default=lf_default)
