"""From MixMonitor to the supervisor's ears: a routed call answered by its agent is
recorded by the simulator (a real WAV file in the spool), stored at hangup, and then
played through a signed URL: the whole file is a valid WAV of the stored duration,
and byte ranges of it come back as 206 with the same bytes."""

from __future__ import annotations

import io
import wave

from recordings.repository import Recording
from tests.recordings.test_control import RecStack, rec, stored_bytes, until

__all__ = ["rec"]  # the fixture, imported for pytest


async def test_a_recorded_call_is_played_back_by_range(rec: RecStack) -> None:
    call_id, channel = await rec.answered_call()
    row = await rec.recording_row(call_id)
    mixmon = rec.sim.pbx.find(channel).mixmonitors[0]  # type: ignore[union-attr]
    await until(lambda: mixmon.writer is not None, "the spool file opened")
    writer = mixmon.writer
    assert writer is not None
    await until(lambda: writer.frames_written > 4000, "half a second of audio")
    await rec.sim.customer_hangup(channel)

    async def stored() -> Recording | None:
        found = await rec.runtime.recordings.get(row.id)
        return found if found is not None and found.state == "stored" else None

    row = await until(stored, "recording stored")
    assert row.size_bytes is not None and row.duration_ms is not None

    # Alice handled it, but agents may not play by default; Sue (a supervisor) may.
    status, body = await rec.request("GET", f"/api/recordings/{row.id}/playback", user="alice")
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await rec.request("GET", f"/api/recordings/{row.id}/playback", user="sue")
    assert status == 200, body
    url = rec.runtime.url + body["url"]

    async with rec.http.get(url) as resp:  # no bearer header: the link is the credential
        assert resp.status == 200 and resp.headers["Accept-Ranges"] == "bytes"
        assert resp.headers["Content-Type"] == "audio/wav"
        whole = await resp.read()
    assert whole == await stored_bytes(rec.runtime, row)
    with wave.open(io.BytesIO(whole)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        assert wav.getnframes() * 1000 // 8000 == row.duration_ms > 500

    size = len(whole)
    for header, first, last in (
        ("bytes=0-43", 0, 43),  # the RIFF header
        ("bytes=44-", 44, size - 1),
        ("bytes=-1000", size - 1000, size - 1),
    ):
        async with rec.http.get(url, headers={"Range": header}) as resp:
            assert resp.status == 206, header
            assert resp.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
            assert await resp.read() == whole[first : last + 1]
    async with rec.http.get(url, headers={"Range": f"bytes={size}-"}) as resp:
        assert resp.status == 416 and resp.headers["Content-Range"] == f"bytes */{size}"

    _, session = await rec.request("GET", "/api/session", user="sue")
    played = await rec.runtime.audit.query(action="recordings.played")
    assert [(e.actor_id, e.subject) for e in played] == [(session["principal"]["id"], row.id)]
