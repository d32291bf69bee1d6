from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from store import make_engine, metadata, ping, safe_url, sqlite_url
from store.migrate import (
    current_revision,
    downgrade,
    head_revision,
    is_up_to_date,
    schema_diff,
    upgrade,
)
from store.schema import load_all

EXPECTED_TABLES = {
    "agents",
    "customers",
    "customer_phones",
    "customer_emails",
    "interactions",
    "call_control_keys",
    "call_records",
    "email_messages",
    "email_attachments",
    "routing_tasks",
    "routing_agent_states",
    "routing_events",
    "routing_meta",
    "routing_customer_agents",
    "audit_events",
    "recordings",
    "recording_pauses",
    "legal_holds",
    "ivr_sessions",
}


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_empty_database_is_at_no_revision(empty_engine: AsyncEngine) -> None:
    assert await current_revision(empty_engine) is None
    assert not await is_up_to_date(empty_engine)


async def test_upgrade_creates_every_table_at_head(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)

    assert await current_revision(empty_engine) == head_revision()
    assert await is_up_to_date(empty_engine)
    assert await _tables(empty_engine) == EXPECTED_TABLES | {"alembic_version"}


async def test_upgrade_twice_is_harmless(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    await upgrade(empty_engine)

    assert await current_revision(empty_engine) == head_revision()


async def test_migrated_tables_match_the_metadata(engine: AsyncEngine) -> None:
    assert set(load_all().tables) == EXPECTED_TABLES
    assert await schema_diff(engine) == []


async def test_downgrade_to_base_drops_everything_and_upgrade_restores_it(
    engine: AsyncEngine,
) -> None:
    await downgrade(engine, "base")
    assert await _tables(engine) <= {"alembic_version"}
    assert await current_revision(engine) is None

    await upgrade(engine)
    assert await schema_diff(engine) == []


async def test_upgrade_by_url_creates_the_data_directory(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "nested" / "data")

    await upgrade(url)
    await upgrade(url)

    assert (tmp_path / "nested" / "data" / "callwright.db").is_file()
    assert await current_revision(url) == head_revision()
    assert await schema_diff(url) == []


async def test_sqlite_engine_enforces_foreign_keys_and_uses_wal(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
    finally:
        await engine.dispose()


async def test_ping_answers_true_for_a_live_database(engine: AsyncEngine) -> None:
    assert await ping(engine)


async def test_ping_answers_false_when_the_server_is_unreachable() -> None:
    engine = make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/test")
    try:
        assert not await ping(engine)
    finally:
        await engine.dispose()


def test_safe_url_masks_the_password() -> None:
    shown = safe_url("postgresql+asyncpg://cw:s3cret@db.example:5432/callwright")

    assert "s3cret" not in shown
    assert "cw:***@db.example" in shown


def test_unsupported_database_is_refused_without_showing_the_password() -> None:
    try:
        make_engine("mysql+aiomysql://cw:s3cret@db.example/callwright")
    except ValueError as error:
        assert "s3cret" not in str(error)
        assert "mysql" in str(error)
    else:
        raise AssertionError("mysql URL accepted")


def test_constraint_names_follow_the_naming_convention() -> None:
    load_all()
    customers = metadata.tables["customers"]
    names = {constraint.name for constraint in customers.constraints}

    assert "uq_customers_account_number" in names
    assert "pk_customers" in names
