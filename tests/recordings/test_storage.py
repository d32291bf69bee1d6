"""LocalStorage (plaintext) with real files, and the recording repository on SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import exc

from recordings.repository import RecordingRepository, new_recording_id
from recordings.storage import (
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    key_for,
    validate_key,
)
from recordings.wav import probe, write_tone
from store.errors import NotFoundError
from tests.recordings.conftest import T0, FakeClock, Seeded

REC = "0123456789abcdef0123456789abcdef"
KEY = f"2025/03/01/{REC}.wav"


def read(path: Path) -> bytes:
    return path.read_bytes()


async def collect(storage: LocalStorage, key: str, start: int, end: int) -> bytes:
    return b"".join([piece async for piece in storage.read_range(key, start, end)])


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "spool" / "call.wav"
    path.parent.mkdir()
    write_tone(path, 2.0)
    return path


# -- keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "/etc/passwd",
        f"2025/03/01/../{REC}.wav",
        f"2025/03/01/{REC}.wav/..",
        f"2025/3/1/{REC}.wav",
        f"2025/03/01/{REC.upper()}.wav",
        f"2025/03/01/{REC}.exe",
        f"2025/13/01/{REC}.wav",
        f"2025\\03\\01\\{REC}.wav",
        f"2025/03/01/{REC}.wav\x00",
        "",
    ],
)
async def test_a_key_outside_the_one_shape_is_refused_by_every_method(
    tmp_path: Path, bad: str
) -> None:
    storage = LocalStorage(tmp_path / "store")
    with pytest.raises(InvalidKey, match="storage key: expected YYYY/MM/DD"):
        validate_key(bad)
    with pytest.raises(InvalidKey):
        await storage.exists(bad)
    with pytest.raises(InvalidKey):
        await storage.delete(bad)
    with pytest.raises(InvalidKey):
        await storage.put(bad, tmp_path)
    with pytest.raises(InvalidKey):
        await collect(storage, bad, 0, 1)
    assert not (tmp_path / "store").exists()


def test_key_for_uses_the_utc_date_and_the_recording_id() -> None:
    assert key_for(REC, datetime(2025, 12, 31, 23, 59, tzinfo=UTC)) == f"2025/12/31/{REC}.wav"


# -- put / read ------------------------------------------------------------------------


async def test_put_stores_a_copy_with_its_sha256_and_size(tmp_path: Path, wav: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    data = read(wav)

    stored = await storage.put(KEY, wav)

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    assert not stored.encrypted
    assert read(tmp_path / "store" / "2025" / "03" / "01" / f"{REC}.wav") == data
    assert read(wav) == data, "put copies; the caller removes the spool file"
    assert await storage.exists(KEY)
    assert await storage.size(KEY) == len(data)
    assert [key async for key in storage.keys()] == [KEY]
    # The stored copy is still a playable WAV of the same length.
    assert probe(tmp_path / "store" / "2025" / "03" / "01" / f"{REC}.wav").duration_ms == 2000


async def test_read_range_returns_exactly_the_requested_bytes(tmp_path: Path, wav: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    data = read(wav)
    await storage.put(KEY, wav)

    assert await collect(storage, KEY, 0, len(data) - 1) == data
    assert await collect(storage, KEY, 0, 0) == data[:1]
    assert await collect(storage, KEY, 44, 20_000) == data[44:20_001]
    assert await collect(storage, KEY, len(data) - 1, len(data) - 1) == data[-1:]
    with pytest.raises(ValueError, match="outside"):
        await collect(storage, KEY, 0, len(data))
    with pytest.raises(ValueError, match="start <= end"):
        await collect(storage, KEY, 10, 9)


async def test_a_missing_object_is_not_found(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")

    assert not await storage.exists(KEY)
    assert not await storage.delete(KEY)
    with pytest.raises(ObjectNotFound):
        await storage.size(KEY)
    with pytest.raises(ObjectNotFound):
        await collect(storage, KEY, 0, 1)
    assert [key async for key in storage.keys()] == []


async def test_delete_removes_the_file(tmp_path: Path, wav: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    await storage.put(KEY, wav)

    assert await storage.delete(KEY)
    assert not await storage.exists(KEY)
    assert [key async for key in storage.keys()] == []


async def test_keys_list_only_valid_keys_not_temporary_or_stray_files(
    tmp_path: Path, wav: Path
) -> None:
    storage = LocalStorage(tmp_path / "store")
    await storage.put(KEY, wav)
    folder = tmp_path / "store" / "2025" / "03" / "01"
    (folder / f".{REC}.wav.1a2b3c4d.tmp").write_bytes(b"RIFF half")
    (folder / "notes.txt").write_text("stray")

    assert [key async for key in storage.keys()] == [KEY]
    assert sorted(p.name for p in storage.leftovers()) == [f".{REC}.wav.1a2b3c4d.tmp", "notes.txt"]


async def test_a_failed_put_leaves_no_file_behind(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")

    with pytest.raises(FileNotFoundError):
        await storage.put(KEY, tmp_path / "no-such.wav")

    assert [key async for key in storage.keys()] == []
    assert storage.leftovers() == []


async def test_put_replaces_an_existing_object_whole(tmp_path: Path, wav: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    await storage.put(KEY, wav)
    other = tmp_path / "other.wav"
    write_tone(other, 0.5, frequency=880)

    stored = await storage.put(KEY, other)

    assert stored.size == other.stat().st_size
    assert await collect(storage, KEY, 0, stored.size - 1) == other.read_bytes()


# -- repository ------------------------------------------------------------------------


async def test_a_recording_runs_from_recording_to_stored(
    seeded: Seeded, repo: RecordingRepository, clock: FakeClock
) -> None:
    rec = await repo.create(
        interaction_id=seeded.interaction_id,
        call_id="call-1",
        agent_id=seeded.agent_id,
        customer_id=seeded.customer_id,
        queue="billing",
        spool_name="call-1.wav",
        external_id="mm-1",
    )
    assert len(rec.id) == 32 and rec.state == "recording"
    assert rec.started_at == clock.now and rec.content_type == "audio/wav"
    assert not rec.encrypted and rec.storage_key is None

    clock.advance(10)
    pause = await repo.add_pause(rec.id, source="desk", actor_id=str(seeded.agent_id))
    assert (await repo.get(rec.id)).state == "paused"  # type: ignore[union-attr]
    assert await repo.add_pause(rec.id, source="api") == pause, "pausing twice is harmless"
    clock.advance(30)
    ended = await repo.end_pause(rec.id)
    assert ended is not None and ended.resumed_at == clock.now
    assert ended.paused_at == clock.now - timedelta(seconds=30)
    assert (await repo.get(rec.id)).state == "recording"  # type: ignore[union-attr]
    assert await repo.end_pause(rec.id) is None

    clock.advance(5)
    await repo.add_pause(rec.id, source="ivr")
    clock.advance(5)
    done = await repo.mark_ended(rec.id)
    assert done.state == "ended" and done.ended_at == clock.now
    pauses = await repo.pauses(rec.id)
    assert [(p.source, p.resumed_at is not None) for p in pauses] == [
        ("desk", True),
        ("ivr", True),
    ], "hangup closes the open pause"

    retain = clock.now + timedelta(days=90)
    stored = await repo.mark_stored(
        rec.id,
        storage_key=key_for(rec.id, rec.started_at),
        sha256="ab" * 32,
        size=32044,
        duration_ms=2000,
        encrypted=True,
        retain_until=retain,
    )
    assert stored.state == "stored" and stored.stored_at == clock.now
    assert (stored.size_bytes, stored.duration_ms, stored.encrypted) == (32044, 2000, True)
    assert stored.retain_until == retain
    assert await repo.find_by_external_id("asterisk", "mm-1") == stored
    assert await repo.find_by_spool_name("call-1.wav") == stored


async def test_listing_filters_and_pages_newest_first(
    seeded: Seeded, repo: RecordingRepository, clock: FakeClock
) -> None:
    other = await seeded.interactions.create(
        channel="voice", direction="inbound", started_at=T0, queue="support"
    )
    made = []
    for index in range(5):
        clock.advance(60)
        interaction = seeded.interaction_id if index % 2 == 0 else other.id
        made.append(
            await repo.create(
                interaction_id=interaction,
                customer_id=seeded.customer_id if index % 2 == 0 else None,
                queue="billing" if index % 2 == 0 else "support",
            )
        )
    newest_first = [r.id for r in reversed(made)]

    assert [r.id for r in await repo.list()] == newest_first
    page1 = await repo.list(limit=2)
    page2 = await repo.list(limit=2, before=(page1[-1].started_at, page1[-1].id))
    page3 = await repo.list(limit=2, before=(page2[-1].started_at, page2[-1].id))
    assert [r.id for r in page1 + page2 + page3] == newest_first
    assert [r.id for r in await repo.list_for_interaction(other.id)] == [
        made[3].id,
        made[1].id,
    ]
    assert [r.id for r in await repo.list_for_customer(seeded.customer_id)] == [
        made[4].id,
        made[2].id,
        made[0].id,
    ]
    assert [r.id for r in await repo.list(queue="support", states=["recording"])] == [
        made[3].id,
        made[1].id,
    ]
    assert await repo.list(states=["stored"]) == []
    with pytest.raises(ValueError, match="state: expected one of"):
        await repo.list(states=["bogus"])
    with pytest.raises(ValueError, match="limit"):
        await repo.list(limit=0)


async def test_bad_input_is_refused_naming_the_field(
    seeded: Seeded, repo: RecordingRepository
) -> None:
    with pytest.raises(ValueError, match="source"):
        await repo.create(interaction_id=seeded.interaction_id, source="zoom")
    with pytest.raises(ValueError, match="spool_name"):
        await repo.create(interaction_id=seeded.interaction_id, spool_name="../../etc/passwd")
    with pytest.raises(ValueError, match="recording_id"):
        await repo.create(interaction_id=seeded.interaction_id, recording_id="1")
    with pytest.raises(exc.IntegrityError):
        await repo.create(interaction_id=999_999)
    rec = await repo.create(interaction_id=seeded.interaction_id)
    with pytest.raises(ValueError, match="state"):
        await repo.update_state(rec.id, "purged")
    with pytest.raises(ValueError, match="source"):
        await repo.add_pause(rec.id, source="phone")
    with pytest.raises(NotFoundError):
        await repo.update_state(new_recording_id(), "failed")
    with pytest.raises(ValueError, match="unknown or read-only column 'id'"):
        await repo.update(rec.id, id="x")
    assert await repo.list() == [rec], "nothing else changed"
    assert await repo.pauses(rec.id) == []


async def test_a_stored_recording_cannot_be_paused(
    seeded: Seeded, repo: RecordingRepository
) -> None:
    rec = await repo.create(interaction_id=seeded.interaction_id)
    await repo.mark_ended(rec.id)

    with pytest.raises(ValueError, match="cannot pause in state 'ended'"):
        await repo.add_pause(rec.id, source="desk")


async def test_delete_removes_the_row_and_its_pauses(
    seeded: Seeded, repo: RecordingRepository
) -> None:
    rec = await repo.create(interaction_id=seeded.interaction_id)
    await repo.add_pause(rec.id, source="desk")

    assert await repo.delete(rec.id)
    assert await repo.get(rec.id) is None
    assert await repo.pauses(rec.id) == []
    assert not await repo.delete(rec.id)


async def test_legal_holds_name_exactly_one_subject_and_are_released_once(
    seeded: Seeded, repo: RecordingRepository, clock: FakeClock
) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        await repo.add_hold(reason="x")
    with pytest.raises(ValueError, match="exactly one"):
        await repo.add_hold(
            reason="x", interaction_id=seeded.interaction_id, customer_id=seeded.customer_id
        )
    with pytest.raises(ValueError, match="reason"):
        await repo.add_hold(reason="  ", customer_id=seeded.customer_id)

    hold = await repo.add_hold(
        reason="litigation 2025-17", customer_id=seeded.customer_id, created_by="9"
    )
    on_call = await repo.add_hold(reason="complaint", interaction_id=seeded.interaction_id)
    assert hold.active and hold.created_at == clock.now
    assert await repo.list_holds(customer_id=seeded.customer_id) == [hold]
    assert await repo.list_holds() == [hold, on_call]

    clock.advance(3600)
    released = await repo.release_hold(hold.id, released_by="9")
    assert not released.active and released.released_at == clock.now
    clock.advance(60)
    assert await repo.release_hold(hold.id, released_by="10") == released
    assert await repo.list_holds() == [on_call]
    assert await repo.list_holds(active_only=False) == [released, on_call]
    with pytest.raises(NotFoundError):
        await repo.release_hold(999_999)
