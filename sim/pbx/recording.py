"""MixMonitor's files, written the way Asterisk writes them.

A real Asterisk 22 MixMonitor mixes both directions of a channel (what the
channel sends, "read", and what it hears, "write") into one file, 8 kHz
16-bit mono signed linear for ``.wav``, written in place as the call goes on:
the file is opened when the first audio arrives (with option ``b``, the first
audio while the channel is bridged), grows every 20 ms, and its RIFF header
sizes are fixed only when the recording closes (StopMixMonitor or hangup).
Nothing renames it: a reader must wait for the stop (MixMonitorStop or the
channel's Hangup) before taking the file.

``WavRecorder`` does the same with simulated audio: a 440 Hz tone for the
channel's own voice (read) and a 660 Hz tone for what it hears (write),
mixed; a muted direction (MixMonitorMute) contributes silence, both muted
give digital silence (zeros). The amount of audio follows the simulated time:
wall-clock time divided by the PBX's ``time_scale`` (so a replay at 100x still
writes the seconds the dialplan waited). The PBX calls ``advance`` on a timer,
before a mute changes and before the channel enters or leaves a bridge, so
each stretch of audio carries the state it had.

Paths (``spool_path``): a relative name lands in ``<spool>/monitor/`` as
Asterisk's ``astspooldir`` does; an absolute name is used as given, but this
simulator writes only inside its spool root: any other path (or a relative one
climbing out with ``..``) is not written, like an Asterisk that cannot open
the file (the action still succeeds and the events still come: Asterisk opens
the file in the recording thread, after replying).
"""

from __future__ import annotations

import array
import logging
import math
import sys
import wave
from pathlib import Path
from typing import BinaryIO, Final

__all__ = ["RATE", "WavRecorder", "option_flags", "spool_path"]

log = logging.getLogger(__name__)

RATE: Final = 8000  # frames a second; one frame = one 16-bit sample (mono)
DEFAULT_SPOOL: Final = "/var/spool/asterisk"


def _tone(freq: int, amplitude: float) -> array.array[int]:
    # One second of an integer frequency is a whole number of periods: the
    # table repeats seamlessly.
    return array.array(
        "h", (int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / RATE)) for i in range(RATE))
    )


def _pcm(samples: array.array[int]) -> bytes:
    if sys.byteorder == "big":  # WAV data is little-endian
        samples = array.array("h", samples)
        samples.byteswap()
    return samples.tobytes()


_READ = _tone(440, 0.3)
_WRITE = _tone(660, 0.2)
# (read muted, write muted) -> one second of audio
_TABLES: Final[dict[tuple[bool, bool], bytes]] = {
    (False, False): _pcm(array.array("h", (a + b for a, b in zip(_READ, _WRITE, strict=True)))),
    (False, True): _pcm(_READ),
    (True, False): _pcm(_WRITE),
    (True, True): bytes(2 * RATE),
}


def option_flags(options: str) -> dict[str, str]:
    """MixMonitor's options as flags: ``"bi(MMID)"`` -> ``{"b": "", "i": "MMID"}``."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(options):
        letter = options[i]
        i += 1
        arg = ""
        if i < len(options) and options[i] == "(":
            end = options.find(")", i)
            end = len(options) if end < 0 else end
            arg = options[i + 1 : end]
            i = end + 1
        flags[letter] = arg
    return flags


def spool_path(file: str, spool_dir: str | None) -> tuple[str, Path | None]:
    """(the MIXMONITOR_FILENAME Asterisk reports, the file this simulator
    writes or ``None``). Nothing is written without a spool dir."""
    # Asterisk reports absolute paths (its astspooldir is absolute).
    root = None if spool_dir is None else Path(spool_dir).resolve()
    base = DEFAULT_SPOOL if root is None else str(root).rstrip("/") or "/"
    shown = file if file.startswith("/") else f"{base}/monitor/{file}"
    if root is None:
        return shown, None
    target = Path(shown).resolve()
    if not target.is_relative_to(root) or target == root:
        log.warning("MixMonitor file %r is outside the spool %s: not written", file, root)
        return shown, None
    if target.suffix.lower() != ".wav":
        log.info("MixMonitor file %r: only .wav is simulated; not written", file)
        return shown, None
    return shown, target


class WavRecorder:
    """One MixMonitor's file. ``now`` values are wall-clock seconds
    (``time.monotonic``); ``scale`` is the PBX's ``time_scale``."""

    def __init__(
        self, path: Path | None, *, started: float, only_bridged: bool, scale: float = 1.0
    ) -> None:
        self.path = path
        self.only_bridged = only_bridged
        self.scale = scale if scale > 0 else 1.0
        self.muted_read = False
        self.muted_write = False
        self.frames_written = 0
        # (frame, muted_read, muted_write) at each mute change: where in the
        # file each stretch starts (tests read the file against it)
        self.marks: list[tuple[int, bool, bool]] = []
        self.closed = False
        self._started = started
        self._position = 0  # frames of simulated time accounted for (written or skipped)
        self._out: wave.Wave_write | None = None
        self._file: BinaryIO | None = None
        self._failed = False

    def advance(self, now: float, *, bridged: bool) -> None:
        """Account for the audio up to ``now`` with the current state."""
        if self.closed:
            return
        due = int(max(0.0, now - self._started) / self.scale * RATE)
        count = due - self._position
        if count <= 0:
            return
        self._position = due
        if self.only_bridged and not bridged:
            return
        self._write(count)

    def mute(self, direction: str, state: bool) -> None:
        if direction in ("read", "both"):
            self.muted_read = state
        if direction in ("write", "both"):
            self.muted_write = state
        self.marks.append((self.frames_written, self.muted_read, self.muted_write))

    def close(self, now: float, *, bridged: bool) -> None:
        """The end of the recording: the last audio, then the header's sizes."""
        if self.closed:
            return
        self.advance(now, bridged=bridged)
        self.closed = True
        out, self._out = self._out, None
        file, self._file = self._file, None
        try:
            if out is not None:
                out.close()  # patches the RIFF and data sizes
        except OSError:
            log.warning("could not finish recording %s", self.path)
        finally:
            if file is not None:
                file.close()

    def _write(self, count: int) -> None:
        if self.path is None or self._failed:
            return
        if self._out is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "wb")  # closed in close()
            except OSError:
                log.warning("could not open recording %s", self.path)
                self._failed = True
                return
            out = wave.open(self._file, "wb")
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            self._out = out
        table = _TABLES[(self.muted_read, self.muted_write)]
        chunk = bytearray()
        pos = self.frames_written % RATE
        left = count
        while left > 0:
            take = min(left, RATE - pos)
            chunk += table[2 * pos : 2 * (pos + take)]
            left -= take
            pos = 0
        try:
            # writeframesraw: the header keeps its first sizes until close(),
            # as Asterisk's format_wav fixes them only when the file closes.
            self._out.writeframesraw(bytes(chunk))
            assert self._file is not None
            self._file.flush()  # the file grows on disk as the call goes on
        except OSError:
            log.warning("could not write recording %s", self.path)
            self._failed = True
            return
        self.frames_written += count
