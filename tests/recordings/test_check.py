"""``recordings check``: orphans found both ways, nothing changed without repair, and
repair doing only what is safe."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recordings.check import check_recordings
from recordings.ingest import Ingestor
from recordings.repository import Recording, RecordingRepository
from recordings.storage import LocalStorage, key_for
from recordings.wav import write_tone
from tests.recordings.conftest import FakeClock, Seeded

STRAY_ID = "feedfacefeedfacefeedfacefeedface"


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def age(path: Path, seconds: float) -> None:
    stat = path.stat()
    os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


def exists(path: Path) -> bool:
    return path.exists()


class World:
    def __init__(self, repo: RecordingRepository, tmp_path: Path, clock: FakeClock) -> None:
        self.repo = repo
        self.clock = clock
        self.spool = tmp_path / "spool"
        self.spool.mkdir()
        self.storage = LocalStorage(tmp_path / "store")
        self.ingestor = Ingestor(repo, self.storage, self.spool, clock=clock)

    async def stored(self, interaction_id: int, name: str) -> Recording:
        rec = await self.repo.create(interaction_id=interaction_id, spool_name=name)
        write_tone(self.spool / name, 0.2)
        return await self.ingestor.finish(rec.id)

    async def ended(self, interaction_id: int, name: str) -> Recording:
        rec = await self.repo.create(interaction_id=interaction_id, spool_name=name)
        write_tone(self.spool / name, 0.2)
        return await self.repo.mark_ended(rec.id)

    async def check(self, repair: bool = False) -> list[str]:
        report = await check_recordings(
            self.repo, self.storage, self.ingestor, repair=repair, clock=self.clock
        )
        return report.lines()


@pytest.fixture
def world(repo: RecordingRepository, tmp_path: Path, clock: FakeClock) -> World:
    return World(repo, tmp_path, clock)


async def test_a_consistent_store_is_clean(seeded: Seeded, world: World) -> None:
    await world.stored(seeded.interaction_id, "a.wav")

    report = await check_recordings(world.repo, world.storage, world.ingestor)

    assert report.clean and report.lines() == []


async def test_orphans_both_ways_are_listed_and_nothing_changes_without_repair(
    seeded: Seeded, world: World
) -> None:
    lost = await world.stored(seeded.interaction_id, "lost.wav")
    await world.storage.delete(lost.storage_key or "")
    stray_key = key_for(STRAY_ID, world.clock.now)
    write(world.storage.root / stray_key, b"RIFF stray")
    pending = await world.ended(seeded.interaction_id, "pending.wav")
    write(world.spool / "nobody.wav", b"RIFF")
    temp = world.storage.root / "2025" / "03" / "01" / f".{STRAY_ID}.wav.0badf00d.tmp"
    write(temp, b"RIFF half")

    lines = await world.check()

    assert lines == [
        f"file without row: {stray_key}",
        f"row without file: {lost.id} ({lost.storage_key})",
        f"in the spool, never stored: {pending.id} (pending.wav)",
        "spool file without row: nobody.wav",
        f"leftover file in storage: 2025/03/01/.{STRAY_ID}.wav.0badf00d.tmp",
    ]
    assert (await world.repo.get(lost.id)).state == "stored"  # type: ignore[union-attr]
    assert (await world.repo.get(pending.id)).state == "ended"  # type: ignore[union-attr]
    assert await world.storage.exists(stray_key)
    assert exists(temp) and exists(world.spool / "pending.wav")
    assert await world.check() == lines, "checking twice finds the same"


async def test_repair_marks_missing_ingests_pending_and_quarantines_orphans(
    seeded: Seeded, world: World
) -> None:
    lost = await world.stored(seeded.interaction_id, "lost.wav")
    await world.storage.delete(lost.storage_key or "")
    stray_key = key_for(STRAY_ID, world.clock.now)
    write(world.storage.root / stray_key, b"RIFF stray")
    pending = await world.ended(seeded.interaction_id, "pending.wav")
    write(world.spool / "nobody.wav", b"RIFF")
    folder = world.storage.root / "2025" / "03" / "01"
    old_temp, new_temp = folder / ".a.wav.00000001.tmp", folder / ".b.wav.00000002.tmp"
    write(old_temp, b"half")
    write(new_temp, b"half")
    age(old_temp, 2 * 3600)

    # File ages are wall-clock times: this check runs on the real clock.
    report = await check_recordings(world.repo, world.storage, world.ingestor, repair=True)

    assert (await world.repo.get(lost.id)).state == "missing"  # type: ignore[union-attr]
    done = await world.repo.get(pending.id)
    assert done is not None and done.state == "stored"
    assert await world.storage.exists(done.storage_key or "")
    assert not exists(world.spool / "pending.wav")
    assert not await world.storage.exists(stray_key)
    assert exists(world.storage.root / ".quarantine" / stray_key.replace("/", "-"))
    assert not exists(old_temp), "an interrupted write older than an hour is removed"
    assert exists(new_temp), "a recent one may be a write in progress"
    assert exists(world.spool / "nobody.wav"), "a spool file without row is only reported"
    assert len(report.repaired) == 4

    after = await world.check()
    assert after == [
        "spool file without row: nobody.wav",
        "leftover file in storage: 2025/03/01/.b.wav.00000002.tmp",
    ]


async def test_an_object_stored_before_its_row_was_marked_is_completed_not_quarantined(
    seeded: Seeded, world: World
) -> None:
    rec = await world.ended(seeded.interaction_id, "c.wav")
    key = key_for(rec.id, rec.started_at)
    await world.storage.put(key, world.spool / "c.wav")  # then the process died

    lines = await world.check()
    assert lines == [f"in the spool, never stored: {rec.id} (c.wav)"]

    await world.check(repair=True)
    done = await world.repo.get(rec.id)
    assert done is not None and done.state == "stored" and done.storage_key == key
    assert await world.check() == []


async def test_a_missing_row_whose_file_is_back_is_restored(seeded: Seeded, world: World) -> None:
    rec = await world.stored(seeded.interaction_id, "d.wav")
    await world.repo.update_state(rec.id, "missing")

    assert await world.check() == [f"file back for a missing row: {rec.id} ({rec.storage_key})"]
    await world.check(repair=True)
    assert (await world.repo.get(rec.id)).state == "stored"  # type: ignore[union-attr]


async def test_a_stale_recording_row_with_a_finished_spool_file_is_ingested(
    seeded: Seeded, world: World
) -> None:
    world.clock.now = datetime.now(UTC)  # file ages are wall-clock times
    rec = await world.repo.create(interaction_id=seeded.interaction_id, spool_name="e.wav")
    write_tone(world.spool / "e.wav", 0.2)

    assert await world.check() == [], "a live recording is left alone"

    age(world.spool / "e.wav", 2 * 3600)
    world.clock.advance(2 * 3600)
    assert await world.check() == [f"in the spool, never stored: {rec.id} (e.wav)"]
    await world.check(repair=True)
    assert (await world.repo.get(rec.id)).state == "stored"  # type: ignore[union-attr]
