"""Apply Alembic migrations from Python (``callwright db upgrade`` calls ``upgrade``).

Every function takes a URL or an already configured ``AsyncEngine`` (for instance one
whose connections set a PostgreSQL ``search_path``): migrations run on a connection
of that engine, so they land where the application will read.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from store.db import make_engine, safe_url
from store.schema import load_all

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "is_up_to_date",
    "schema_diff",
    "upgrade",
]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

T = TypeVar("T")


def alembic_config() -> Config:
    """An Alembic Config pointing at the bundled migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


@asynccontextmanager
async def _engine_for(target: str | AsyncEngine) -> AsyncIterator[AsyncEngine]:
    if isinstance(target, AsyncEngine):
        yield target
        return
    engine = make_engine(target, poolclass=NullPool)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _run(target: str | AsyncEngine, fn: Callable[[Connection], T], *, write: bool) -> T:
    async with _engine_for(target) as engine:
        if write:
            async with engine.begin() as conn:
                return await conn.run_sync(fn)
        async with engine.connect() as conn:
            return await conn.run_sync(fn)


def _with_connection(connection: Connection) -> Config:
    config = alembic_config()
    config.attributes["connection"] = connection
    return config


async def upgrade(target: str | AsyncEngine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (the latest by default). Idempotent."""
    if isinstance(target, str):
        log.info("migrating %s to %s", safe_url(target), revision)
    await _run(target, lambda conn: command.upgrade(_with_connection(conn), revision), write=True)


async def downgrade(target: str | AsyncEngine, revision: str) -> None:
    """Migrate back to ``revision`` (``"base"`` drops every table)."""
    await _run(target, lambda conn: command.downgrade(_with_connection(conn), revision), write=True)


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def current_revision(target: str | AsyncEngine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    return await _run(target, _current, write=False)


async def is_up_to_date(target: str | AsyncEngine) -> bool:
    return await current_revision(target) == head_revision()


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    diff: list[Any] = compare_metadata(context, load_all())
    return diff


async def schema_diff(target: str | AsyncEngine) -> list[Any]:
    """Differences between the live tables and ``store.metadata`` (empty when in sync)."""
    return await _run(target, _diff, write=False)
