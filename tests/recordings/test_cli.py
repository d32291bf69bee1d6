"""The CLI: ``callwright recordings purge [--dry-run]``, ``recordings check [--repair]``
and ``customers erase <id>`` against a real SQLite store and real files."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_desk.audit import AuditLog
from callwright.cli import main
from callwright.config import load_config
from crm.repository import CustomerRepository, InteractionRepository
from recordings.ingest import Ingestor
from recordings.repository import RecordingRepository
from recordings.storage import LocalStorage
from recordings.wav import write_tone
from store import make_engine
from store.migrate import upgrade

CONFIG = """
[ami]
secret = "x"

[store]
data_dir = "data"

[recordings]
enabled = true

[recordings.queues.support]
retention_days = 30
"""


def setup(tmp_path: Path, *, stored_days_ago: float) -> tuple[Path, dict[str, int | str]]:
    """A config file, a migrated store, and one customer with a stored recording."""
    config_path = tmp_path / "config.toml"
    config_path.write_text(CONFIG)
    config = load_config(config_path, env={})

    async def seed() -> dict[str, int | str]:
        await upgrade(config.store.effective_url)
        engine = make_engine(config.store.effective_url)
        try:
            customer = await CustomerRepository(engine).create("Ada", phones=["+15550100001"])
            started = datetime.now(UTC) - timedelta(days=stored_days_ago)
            interaction = await InteractionRepository(engine).create(
                channel="voice",
                direction="inbound",
                started_at=started,
                customer_id=customer.id,
                queue="support",
            )
            repo = RecordingRepository(engine, clock=lambda: started)
            spool = config.recordings.spool_dir
            spool.mkdir(parents=True)
            rec = await repo.create(
                interaction_id=interaction.id,
                customer_id=customer.id,
                queue="support",
                spool_name="a.wav",
            )
            write_tone(spool / "a.wav", 0.2)
            storage = LocalStorage(config.recordings.dir)
            ingestor = Ingestor(
                repo,
                storage,
                spool,
                retention_days=config.recordings.retention_days,
                clock=lambda: started,
            )
            await ingestor.finish(rec.id)
            return {"customer": customer.id, "recording": rec.id}
        finally:
            await engine.dispose()

    return config_path, asyncio.run(seed())


def test_purge_dry_run_lists_then_purge_deletes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = setup(tmp_path, stored_days_ago=31)

    assert main(["recordings", "purge", "--dry-run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"would delete recording {ids['recording']} (queue support" in out
    assert "1 recording(s) would delete" in out
    assert len(list((tmp_path / "data" / "recordings").rglob("*.wav"))) == 1

    assert main(["recordings", "purge", "--config", str(config)]) == 0
    assert f"deleted recording {ids['recording']}" in capsys.readouterr().out
    assert list((tmp_path / "data" / "recordings").rglob("*.wav")) == []

    assert main(["recordings", "purge", "--config", str(config)]) == 0
    assert "0 recording(s) deleted" in capsys.readouterr().out


def test_nothing_is_purged_before_its_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = setup(tmp_path, stored_days_ago=29)

    assert main(["recordings", "purge", "--config", str(config)]) == 0
    assert "0 recording(s) deleted" in capsys.readouterr().out
    assert len(list((tmp_path / "data" / "recordings").rglob("*.wav"))) == 1


def test_a_shorter_retention_applies_to_stored_recordings_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = setup(tmp_path, stored_days_ago=20)  # kept 30 days: 10 left
    shorter = (tmp_path / "config.toml").read_text().replace("30", "15")
    (tmp_path / "config.toml").write_text(shorter)  # policy now: 15 days
    assert main(["recordings", "purge", "--config", str(config)]) == 0
    assert "0 recording(s) deleted" in capsys.readouterr().out  # stored under the old policy

    assert main(["recordings", "retention", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"would set recording {ids['recording']} (queue support) to keep until" in out
    assert "1 recording(s): would set" in out
    assert main(["recordings", "purge", "--config", str(config)]) == 0
    assert "0 recording(s) deleted" in capsys.readouterr().out  # a listing changes nothing

    assert main(["recordings", "retention", "--apply", "--config", str(config)]) == 0
    assert "1 recording(s): set" in capsys.readouterr().out
    assert main(["recordings", "retention", "--config", str(config)]) == 0
    assert "0 recording(s)" in capsys.readouterr().out
    assert main(["recordings", "purge", "--config", str(config)]) == 0
    assert f"deleted recording {ids['recording']}" in capsys.readouterr().out

    async def audited() -> list[tuple[str, str | None]]:
        engine = make_engine(load_config(config, env={}).store.effective_url)
        try:
            rows = await AuditLog(engine).query(limit=10)
        finally:
            await engine.dispose()
        return [(r.action, r.subject) for r in rows]

    subject = f"recording:{ids['recording']}"
    assert ("recordings.retention", subject) in asyncio.run(audited())


def test_check_reports_then_repairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, ids = setup(tmp_path, stored_days_ago=1)

    assert main(["recordings", "check", "--config", str(config)]) == 0
    assert "storage, spool and rows agree" in capsys.readouterr().out

    (stored,) = (tmp_path / "data" / "recordings").rglob("*.wav")
    stored.unlink()
    assert main(["recordings", "check", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"row without file: {ids['recording']}" in out
    assert "--repair" in out

    assert main(["recordings", "check", "--repair", "--config", str(config)]) == 0
    assert f"repaired: {ids['recording']}: state missing" in capsys.readouterr().out
    assert main(["recordings", "check", "--config", str(config)]) == 0


def test_customers_erase_prints_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = setup(tmp_path, stored_days_ago=1)

    assert main(["customers", "erase", str(ids["customer"]), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"customer {ids['customer']} erased:" in out
    assert f"recordings deleted: 1 {ids['recording']}" in out
    assert "phones: 1" in out
    assert list((tmp_path / "data" / "recordings").rglob("*.wav")) == []

    assert main(["customers", "erase", "999999", "--config", str(config)]) == 1
    assert "no customer with id 999999" in capsys.readouterr().err


def test_erase_under_a_legal_hold_fails_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = setup(tmp_path, stored_days_ago=1)
    url = load_config(config, env={}).store.effective_url

    async def hold() -> None:
        engine = make_engine(url)
        try:
            await RecordingRepository(engine).add_hold(
                reason="court", customer_id=int(ids["customer"])
            )
        finally:
            await engine.dispose()

    asyncio.run(hold())

    assert main(["customers", "erase", str(ids["customer"]), "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "under legal hold" in err and "release the hold first" in err
    assert len(list((tmp_path / "data" / "recordings").rglob("*.wav"))) == 1


def test_a_store_not_migrated_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)

    assert main(["recordings", "check", "--config", str(config)]) == 1
    assert "callwright db upgrade" in capsys.readouterr().err
