"""The issue's end-to-end test: a simulated routed call answered by its agent ->
MixMonitor (AMI, over TCP) -> a real WAV file written by the simulator with the
standard library in the spool -> hangup -> moved into storage with its SHA-256,
size and duration on the row -> a supervisor's signed playback URL -> the
browser's kind of requests (Range) answered with exactly the stored bytes."""

from __future__ import annotations

import asyncio
import hashlib
import io
import wave
from pathlib import Path

import aiohttp

from recordings.repository import Recording
from tests.recordings.test_control import RecStack, rec, until  # noqa: F401 (rec: a fixture)


async def test_a_routed_call_is_recorded_stored_and_played_back_by_range(
    rec: RecStack,  # noqa: F811
) -> None:
    call_id, channel = await rec.answered_call("+15550100042")
    row = await rec.recording_row(call_id)
    spool_file = rec.spool / "monitor" / (row.spool_name or "")
    mixmon = rec.sim.pbx.find(channel).mixmonitors[0]  # type: ignore[union-attr]
    assert mixmon.writer is not None and mixmon.writer.path == spool_file
    # the simulator writes the file in place while the call goes on
    await until(lambda: mixmon.writer.frames_written >= 4000, "half a second of audio")  # type: ignore[union-attr]
    assert await asyncio.to_thread(spool_file.exists)

    await rec.sim.customer_hangup(channel)

    async def stored() -> Recording | None:
        found = await rec.runtime.recordings.get(row.id)
        return found if found is not None and found.state == "stored" else None

    done: Recording = await until(stored, "recording stored")
    assert done.storage_key is not None and done.size_bytes is not None
    assert not await asyncio.to_thread(spool_file.exists)
    storage_root: Path = rec.runtime.config.recordings.dir
    stored_file = storage_root / done.storage_key
    data = await asyncio.to_thread(stored_file.read_bytes)  # unencrypted here
    assert len(data) == done.size_bytes
    assert hashlib.sha256(data).hexdigest() == done.sha256
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
        frames = wav.getnframes()
    assert frames == mixmon.writer.frames_written  # type: ignore[union-attr]
    assert done.duration_ms == frames * 1000 // 8000

    # a supervisor asks for a playback URL and the player seeks with Range
    status, issued = await rec.request("GET", f"/api/recordings/{done.id}/playback", user="sue")
    assert status == 200, issued
    media = rec.runtime.url + issued["url"]
    async with aiohttp.ClientSession() as http:
        async with http.get(media) as resp:
            assert resp.status == 200
            assert await resp.read() == data
        async with http.get(media, headers={"Range": "bytes=44-1043"}) as resp:
            assert resp.status == 206
            assert resp.headers["Content-Range"] == f"bytes 44-1043/{len(data)}"
            assert await resp.read() == data[44:1044]
        async with http.get(media, headers={"Range": "bytes=-100"}) as resp:
            assert resp.status == 206 and await resp.read() == data[-100:]
