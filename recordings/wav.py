"""WAV files with the standard library's ``wave``: the duration of a recording, and a
writer of real (tone) WAV files for the simulator and the tests.

``probe(path)`` reads only the header: a file that is not a readable PCM WAV raises
``NotAWav`` naming the file and the reason.
"""

from __future__ import annotations

import math
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NotAWav", "WavInfo", "probe", "tone_frames", "write_tone"]


class NotAWav(ValueError):
    pass


@dataclass(frozen=True)
class WavInfo:
    channels: int
    sample_width: int
    """Bytes per sample."""
    frame_rate: int
    frames: int

    @property
    def duration_ms(self) -> int:
        return (self.frames * 1000) // self.frame_rate if self.frame_rate else 0


def probe(path: Path) -> WavInfo:
    try:
        with wave.open(str(path), "rb") as reader:
            return WavInfo(
                channels=reader.getnchannels(),
                sample_width=reader.getsampwidth(),
                frame_rate=reader.getframerate(),
                frames=reader.getnframes(),
            )
    except (wave.Error, EOFError) as exc:
        raise NotAWav(f"{path.name}: not a PCM WAV file ({exc or 'truncated'})") from None


def tone_frames(seconds: float, *, frame_rate: int = 8000, frequency: float = 440.0) -> bytes:
    """16-bit mono PCM of a sine tone (what a telephone recording looks like: 8 kHz)."""
    count = int(seconds * frame_rate)
    step = 2 * math.pi * frequency / frame_rate
    return b"".join(
        struct.pack("<h", int(12000 * math.sin(step * index))) for index in range(count)
    )


def write_tone(
    path: Path, seconds: float, *, frame_rate: int = 8000, frequency: float = 440.0
) -> WavInfo:
    """Write a real 16-bit mono WAV file of ``seconds`` of tone; returns what ``probe`` says."""
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(frame_rate)
        writer.writeframes(tone_frames(seconds, frame_rate=frame_rate, frequency=frequency))
    return probe(path)
