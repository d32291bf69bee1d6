"""Ingest: a real WAV file in the spool ends up in storage with its hash, size and
duration on the row; a crash at any step leaves no half file visible and loses no row,
and running again completes it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from recordings.ingest import Ingestor, SpoolPathError
from recordings.repository import Recording, RecordingRepository
from recordings.storage import LocalStorage, key_for
from recordings.wav import write_tone
from tests.recordings.conftest import FakeClock, Seeded

ROOT = Path(__file__).resolve().parents[2]


def read(path: Path) -> bytes:
    return path.read_bytes()


def exists(path: Path) -> bool:
    return path.exists()


async def collect(storage: LocalStorage, key: str) -> bytes:
    size = await storage.size(key)
    return b"".join([piece async for piece in storage.read_range(key, 0, size - 1)])


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


async def ended_recording(
    repo: RecordingRepository, seeded: Seeded, spool: Path, seconds: float = 2.0
) -> tuple[Recording, bytes]:
    rec = await repo.create(
        interaction_id=seeded.interaction_id,
        agent_id=seeded.agent_id,
        customer_id=seeded.customer_id,
        queue="billing",
        spool_name="call-1-abc.wav",
    )
    write_tone(spool / "call-1-abc.wav", seconds)
    rec = await repo.mark_ended(rec.id)
    return rec, read(spool / "call-1-abc.wav")


async def test_finish_stores_the_file_and_fills_the_row(
    seeded: Seeded, repo: RecordingRepository, clock: FakeClock, spool: Path, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "store")
    ingestor = Ingestor(repo, storage, spool, retention_days={"billing": 90}.get, clock=clock)
    rec, data = await ended_recording(repo, seeded, spool)
    clock.advance(3)

    stored = await ingestor.finish(rec.id)

    key = key_for(rec.id, rec.started_at)
    assert stored.state == "stored" and stored.storage_key == key
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size_bytes == len(data) and stored.duration_ms == 2000
    assert stored.stored_at == clock.now
    assert stored.retain_until == clock.now + timedelta(days=90)
    assert await collect(storage, key) == data
    assert not exists(spool / "call-1-abc.wav"), "the spool file is removed once stored"
    assert await ingestor.finish(rec.id) == stored, "finishing twice changes nothing"


async def test_finish_ends_a_recording_still_marked_recording(
    seeded: Seeded, repo: RecordingRepository, spool: Path, tmp_path: Path
) -> None:
    ingestor = Ingestor(repo, LocalStorage(tmp_path / "store"), spool)
    rec = await repo.create(interaction_id=seeded.interaction_id, spool_name="x.wav")
    write_tone(spool / "x.wav", 0.5)

    stored = await ingestor.finish(rec.id)

    assert stored.state == "stored" and stored.ended_at is not None
    assert stored.retain_until is None, "no retention policy: kept until erased"


async def test_a_recording_with_no_file_anywhere_is_marked_failed(
    seeded: Seeded, repo: RecordingRepository, spool: Path, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "store")
    ingestor = Ingestor(repo, storage, spool)
    rec = await repo.create(interaction_id=seeded.interaction_id, spool_name="gone.wav")

    result = await ingestor.finish(rec.id)

    assert result.state == "failed"
    assert [key async for key in storage.keys()] == []


async def test_a_spool_path_outside_the_spool_directory_is_refused(
    seeded: Seeded, repo: RecordingRepository, spool: Path, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "store")
    ingestor = Ingestor(repo, storage, spool)
    rec = await repo.create(interaction_id=seeded.interaction_id, spool_name="x.wav")
    outside = tmp_path / "secret.wav"
    write_tone(outside, 0.1)

    with pytest.raises(SpoolPathError, match="not in the spool directory"):
        await ingestor.finish(rec.id, spool / ".." / "secret.wav")
    with pytest.raises(SpoolPathError, match="bare file name"):
        ingestor.spool_path("../secret.wav")

    assert (await repo.get(rec.id)).state == "recording"  # type: ignore[union-attr]
    assert exists(outside)
    assert [key async for key in storage.keys()] == []


async def test_a_file_that_is_not_a_wav_is_stored_without_a_duration(
    seeded: Seeded, repo: RecordingRepository, spool: Path, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "store")
    ingestor = Ingestor(repo, storage, spool)
    rec = await repo.create(interaction_id=seeded.interaction_id, spool_name="odd.wav")
    (spool / "odd.wav").write_bytes(b"RIFF\x00\x00")

    stored = await ingestor.finish(rec.id)

    assert stored.state == "stored" and stored.duration_ms is None and stored.size_bytes == 6


# -- crashes ---------------------------------------------------------------------------

_PUT_IN_CHILD = """
import asyncio, sys
from pathlib import Path
from recordings.storage import LocalStorage
asyncio.run(LocalStorage(Path(sys.argv[1])).put(sys.argv[2], Path(sys.argv[3])))
"""


def _feed(fifo: Path, data: bytes, stop: threading.Event) -> None:
    # Write part of the file into the pipe the child reads, then hold it open (the
    # child blocks reading the rest) until the test has killed the child.
    fd = os.open(fifo, os.O_WRONLY)
    try:
        os.write(fd, data)
        stop.wait(120)
    finally:
        os.close(fd)


async def test_a_process_killed_mid_put_leaves_no_visible_file_and_the_row_completes(
    seeded: Seeded, repo: RecordingRepository, spool: Path, tmp_path: Path
) -> None:
    """A child process copies the spool file into storage from a pipe; it is killed
    with SIGKILL after 64 KiB reached the temporary file. Nothing is listed or readable
    in storage, the row still says the file is in the spool, and finish completes it."""
    root = tmp_path / "store"
    storage = LocalStorage(root)
    rec, data = await ended_recording(repo, seeded, spool, seconds=6.0)
    assert len(data) > 70_000
    key = key_for(rec.id, rec.started_at)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PUT_IN_CHILD,
        str(root),
        key,
        str(fifo),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(fifo, data[:70_000], stop), daemon=True)
    feeder.start()
    try:
        # Wait (bounded) for the first 64 KiB block to land in the temporary file.
        for _ in range(6000):
            leftovers = storage.leftovers()
            if leftovers and leftovers[0].stat().st_size >= 65_536:
                break
            if child.returncode is not None:
                assert child.stderr is not None
                raise AssertionError((await child.stderr.read()).decode())
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the child never wrote its first block")
        child.send_signal(signal.SIGKILL)
        await child.wait()
    finally:
        stop.set()
        feeder.join(timeout=30)  # the pipe never opened if the child died early
    assert child.returncode == -signal.SIGKILL

    # The half file exists only under a hidden temporary name.
    (half,) = storage.leftovers()
    assert half.name.startswith(".") and half.name.endswith(".tmp")
    assert 0 < half.stat().st_size < len(data)
    assert [k async for k in storage.keys()] == []
    assert not await storage.exists(key)
    row = await repo.get(rec.id)
    assert row is not None and row.state == "ended" and row.spool_name == "call-1-abc.wav"
    assert read(spool / "call-1-abc.wav") == data

    stored = await Ingestor(repo, storage, spool).finish(rec.id)

    assert stored.state == "stored"
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await collect(storage, key) == data
    assert [k async for k in storage.keys()] == [key]


async def test_a_crash_between_storing_and_marking_the_row_is_completed_by_finish(
    seeded: Seeded, repo: RecordingRepository, spool: Path, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "store")
    rec, data = await ended_recording(repo, seeded, spool)
    key = key_for(rec.id, rec.started_at)
    await storage.put(key, spool / "call-1-abc.wav")  # ... and the process died here

    assert (await repo.get(rec.id)).state == "ended"  # type: ignore[union-attr]
    stored = await Ingestor(repo, storage, spool).finish(rec.id)

    assert stored.state == "stored" and stored.size_bytes == len(data)
    assert await collect(storage, key) == data
    assert not exists(spool / "call-1-abc.wav")


async def test_a_crash_after_marking_but_before_removing_the_spool_file(
    seeded: Seeded, repo: RecordingRepository, spool: Path, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "store")
    ingestor = Ingestor(repo, storage, spool)
    rec, data = await ended_recording(repo, seeded, spool)
    stored = await ingestor.finish(rec.id)
    (spool / "call-1-abc.wav").write_bytes(data)  # as if the unlink never happened

    assert await ingestor.finish(rec.id) == stored
    assert not exists(spool / "call-1-abc.wav")


async def test_finish_pending_completes_every_ended_recording(
    seeded: Seeded, repo: RecordingRepository, spool: Path, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "store")
    ingestor = Ingestor(repo, storage, spool)
    names = []
    for index in range(3):
        name = f"call-{index}.wav"
        rec = await repo.create(interaction_id=seeded.interaction_id, spool_name=name)
        write_tone(spool / name, 0.2)
        await repo.mark_ended(rec.id)
        names.append(rec.id)
    live = await repo.create(interaction_id=seeded.interaction_id, spool_name="live.wav")

    done = await ingestor.finish_pending()

    assert sorted(r.id for r in done) == sorted(names)
    assert all(r.state == "stored" for r in done)
    assert (await repo.get(live.id)).state == "recording"  # type: ignore[union-attr]
    assert len([k async for k in storage.keys()]) == 3


async def test_an_object_stored_whose_spool_file_then_vanished_is_marked_from_storage(
    seeded: Seeded, repo: RecordingRepository, spool: Path, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "store", bytes(range(32)))
    rec, data = await ended_recording(repo, seeded, spool)
    key = key_for(rec.id, rec.started_at)
    await storage.put(key, spool / "call-1-abc.wav")
    (spool / "call-1-abc.wav").unlink()  # removed by hand before the row was marked

    stored = await Ingestor(repo, storage, spool).finish(rec.id)

    assert stored.state == "stored" and stored.encrypted
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size_bytes == len(data)
