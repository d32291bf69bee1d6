"""The runtime's recording jobs, over the real stack (simulator over TCP, SQLite): at
start it stores recordings a crash left in the spool, and its purge job deletes what
retention says is due, audited."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from callwright.config import RecordingPolicy, RecordingsConfig
from callwright.runtime import Runtime
from crm.repository import InteractionRepository
from recordings.repository import RecordingRepository
from recordings.storage import LocalStorage, key_for
from recordings.wav import write_tone
from sim.pbx.server import PbxSimulator
from store import make_engine
from store.migrate import upgrade
from tests.integration.conftest import make_config


async def until(check: Callable[[], Coroutine[Any, Any, bool]], what: str) -> None:
    for _ in range(1000):  # a bound, not a timing assertion
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def test_start_stores_spooled_recordings_and_the_purge_job_deletes_due_ones(
    sim: PbxSimulator, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    recordings = RecordingsConfig(
        enabled=True,
        dir=data / "recordings",
        spool_dir=data / "spool",
        purge_interval=3600,
        queues={"support": RecordingPolicy(retention_days=30)},
    )
    config = replace(make_config(sim.port, data), recordings=recordings)
    url = config.store.effective_url
    await upgrade(url)
    engine = make_engine(url)
    long_ago = datetime.now(UTC) - timedelta(days=40)
    try:
        interaction = await InteractionRepository(engine).create(
            channel="voice", direction="inbound", started_at=long_ago, queue="support"
        )
        repo = RecordingRepository(engine)
        recordings.spool_dir.mkdir(parents=True)
        # Ended, file still in the spool: the process stopped before storing it.
        left = await repo.create(interaction_id=interaction.id, queue="support", spool_name="l.wav")
        write_tone(recordings.spool_dir / "l.wav", 0.3)
        await repo.mark_ended(left.id)
        # Stored 40 days ago in a queue that keeps recordings 30 days.
        old = await repo.create(interaction_id=interaction.id, queue="support", started_at=long_ago)
        write_tone(tmp_path / "old.wav", 0.3)
        key = key_for(old.id, long_ago)
        put = await LocalStorage(recordings.dir).put(key, tmp_path / "old.wav")
        await repo.mark_stored(
            old.id, storage_key=key, sha256=put.sha256, size=put.size, duration_ms=300,
            encrypted=False, retain_until=long_ago + timedelta(days=30), stored_at=long_ago,
        )  # fmt: skip
    finally:
        await engine.dispose()

    runtime = Runtime(config)
    await runtime.start()
    try:

        async def stored() -> bool:
            row = await runtime.recordings.get(left.id)
            return row is not None and row.state == "stored"

        async def purged() -> bool:  # the audit row is written last
            return bool(await runtime.audit.query(action="recordings.purge"))

        await until(stored, "the spooled recording stored")
        await until(purged, "the due recording purged")
        row = await runtime.recordings.get(left.id)
        assert row is not None and row.duration_ms == 300
        assert row.retain_until is not None
        assert not (recordings.spool_dir / "l.wav").exists()
        assert await runtime.recordings.get(old.id) is None
        assert not await runtime.recording_storage.exists(key)
        assert [k async for k in runtime.recording_storage.keys()] == [row.storage_key]
        (audited,) = await runtime.audit.query(action="recordings.purge")
        assert (audited.actor_id, audited.subject) == ("system", f"recording:{old.id}")
    finally:
        await runtime.stop()
