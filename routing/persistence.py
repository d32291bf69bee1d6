"""The agents table and its repository.

An agent's ``extension`` is the PJSIP device number their phone registers as (1001...).
Agents are deactivated (``active=False``) rather than deleted, so history keeps them.

Passwords are stored as argon2id hashes (``password_hash``; NULL: the agent cannot
log in) and never leave this module: ``Agent`` does not carry the hash.
``token_version`` is part of every session token; it goes up when the password
changes, the agent is deactivated or their role changes, or on
``revoke_sessions``, and a token carrying an older version is refused.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any, Final, Literal, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Integer,
    String,
    Table,
    exc,
    false,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.db import metadata
from store.errors import DuplicateError, NotFoundError
from store.types import UtcDateTime, utc_now

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "ROLES",
    "Agent",
    "AgentRepository",
    "Role",
    "agents",
    "check_password",
]

Role = Literal["agent", "supervisor", "admin"]
ROLES: Final[tuple[Role, ...]] = ("agent", "supervisor", "admin")
MIN_PASSWORD_LENGTH: Final = 10
MAX_PASSWORD_LENGTH: Final = 1024  # argon2 hashes any length; a megabyte is an attack
# Verified against when the username is unknown, so that answering "no such
# agent" costs as much as a wrong password (argon2-cffi's default parameters).
_DUMMY_HASH: Final = (
    "$argon2id$v=19$m=65536,t=3,p=4$l9xGOgR3S0Kf5XiTDJ/flw"
    "$8W3x1gVt59XV7LVe9HkTHgIC4J3irgVgqobKQ0SO1cc"
)

agents = Table(
    "agents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("extension", String(32), nullable=False, unique=True),
    Column("email", String(320), nullable=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("active", Boolean(create_constraint=False), nullable=False),
    # Routing profile: {"billing": 7}, ["en", "fr"], {"voice": 1, "email": 3}.
    Column("skills", JSON, nullable=False, server_default="{}"),
    Column("languages", JSON, nullable=False, server_default="[]"),
    Column("capacity", JSON, nullable=False, server_default='{"voice": 1, "email": 3}'),
    Column("auto_accept", Boolean(create_constraint=False), nullable=False, server_default=false()),
    # argon2id (PHC string); NULL: no password, the agent cannot log in.
    Column("password_hash", String(255), nullable=True),
    Column("token_version", Integer, nullable=False, server_default="0"),
    CheckConstraint("role IN ('agent', 'supervisor', 'admin')", name="role"),
)


@dataclass(frozen=True)
class Agent:
    id: int
    username: str
    display_name: str
    extension: str
    email: str | None
    role: Role
    created_at: datetime
    active: bool
    skills: dict[str, int] = dataclass_field(default_factory=dict)
    languages: tuple[str, ...] = ()
    capacity: dict[str, int] = dataclass_field(default_factory=lambda: {"voice": 1, "email": 3})
    auto_accept: bool = False
    token_version: int = 0


def _agent(row: Row[Any]) -> Agent:
    return Agent(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        extension=row.extension,
        email=row.email,
        role=cast(Role, row.role),
        created_at=row.created_at,
        active=bool(row.active),
        skills=dict(row.skills or {}),
        languages=tuple(row.languages or ()),
        capacity=dict(row.capacity or {}),
        auto_accept=bool(row.auto_accept),
        token_version=int(row.token_version),
    )


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    return role


def _clean(field: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"agent {field} must not be empty")
    return value


_UPDATABLE: Final = frozenset(
    {
        "display_name",
        "extension",
        "email",
        "role",
        "active",
        "username",
        "skills",
        "languages",
        "capacity",
        "auto_accept",
    }
)


def _check_profile(values: dict[str, Any]) -> None:
    """Skills are levels 1-10, capacities 0 or more: refuse anything else."""
    for name, level in values.get("skills", {}).items():
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 10:
            raise ValueError(f"agent skills.{name}: expected a level 1-10, got {level!r}")
    for channel, count in values.get("capacity", {}).items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"agent capacity.{channel}: expected 0 or more, got {count!r}")
    if "languages" in values:
        values["languages"] = sorted(str(lang) for lang in values["languages"])


def check_password(password: object) -> str:
    """The password policy: a string of 10 to 1024 characters. The message
    never repeats the password."""
    if not isinstance(password, str):
        raise ValueError("password: expected a string")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(
            f"password: too short ({len(password)} characters; "
            f"at least {MIN_PASSWORD_LENGTH} required)"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password: too long (at most {MAX_PASSWORD_LENGTH} characters)")
    return password


class AgentRepository:
    """Agents in the store. Password hashing runs in worker threads (an argon2id
    hash takes ~0.1 s of CPU), at most ``hash_concurrency`` at a time, so that
    a burst of logins cannot starve the event loop or the machine."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], datetime] = utc_now,
        hasher: PasswordHasher | None = None,
        hash_concurrency: int = 2,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._hasher = hasher or PasswordHasher()
        self._hashing = asyncio.Semaphore(hash_concurrency)
        # With other parameters than the defaults, the dummy is hashed on first use.
        self._dummy_hash: str | None = (
            None if self._hasher.check_needs_rehash(_DUMMY_HASH) else _DUMMY_HASH
        )

    async def _hash(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, hashed: str, password: str) -> bool:
        async with self._hashing:
            try:
                return await asyncio.to_thread(self._hasher.verify, hashed, password)
            except (VerificationError, InvalidHashError):
                return False

    async def set_password(self, agent_id: int, password: str) -> Agent:
        """Store an argon2id hash of ``password`` (10-1024 characters, else
        ValueError) and revoke the agent's sessions (token_version + 1)."""
        hashed = await self._hash(check_password(password))
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(agents)
                .where(agents.c.id == agent_id)
                .values(password_hash=hashed, token_version=agents.c.token_version + 1)
                .returning(agents)
            )
            row = result.one_or_none()
        if row is None:
            raise NotFoundError("agent", agent_id)
        return _agent(row)

    async def verify_password(self, username: str, password: str) -> Agent | None:
        """The active agent with this username and password, else None. An
        unknown username, an inactive agent or one without a password costs
        the same hash as a wrong password (no timing oracle)."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(agents).where(agents.c.username == username.strip()))
            ).first()
        hashed = None if row is None else row.password_hash
        if row is None or hashed is None or not row.active:
            if self._dummy_hash is None:
                self._dummy_hash = await self._hash("callwright-dummy-password")
            await self._verify(self._dummy_hash, password)
            return None
        if not await self._verify(hashed, password):
            return None
        if self._hasher.check_needs_rehash(hashed):
            # Parameters were raised since: store the stronger hash (same password,
            # so the sessions stay valid).
            rehashed = await self._hash(password)
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(agents)
                    .where(agents.c.id == row.id, agents.c.password_hash == hashed)
                    .values(password_hash=rehashed)
                )
        return _agent(row)

    async def has_password(self, agent_id: int) -> bool:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(agents.c.password_hash).where(agents.c.id == agent_id))
            ).first()
        return row is not None and row.password_hash is not None

    async def revoke_sessions(self, agent_id: int) -> Agent:
        """Invalidate every session token issued to the agent so far."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(agents)
                .where(agents.c.id == agent_id)
                .values(token_version=agents.c.token_version + 1)
                .returning(agents)
            )
            row = result.one_or_none()
        if row is None:
            raise NotFoundError("agent", agent_id)
        return _agent(row)

    async def create(
        self,
        username: str,
        display_name: str,
        extension: str,
        *,
        email: str | None = None,
        role: str = "agent",
        active: bool = True,
        skills: dict[str, int] | None = None,
        languages: tuple[str, ...] | list[str] = (),
        capacity: dict[str, int] | None = None,
        auto_accept: bool = False,
    ) -> Agent:
        values: dict[str, Any] = {
            "skills": dict(skills or {}),
            "languages": list(languages),
            "capacity": dict(capacity if capacity is not None else {"voice": 1, "email": 3}),
            "auto_accept": auto_accept,
            "username": _clean("username", username),
            "display_name": _clean("display_name", display_name),
            "extension": _clean("extension", extension),
            "email": email.strip().lower() if email else None,
            "role": _check_role(role),
            "created_at": self._clock(),
            "active": active,
        }
        _check_profile(values)
        async with self._engine.begin() as conn:
            await self._refuse_duplicates(conn, values, exclude_id=None)
            try:
                result = await conn.execute(insert(agents).values(**values).returning(agents))
            except exc.IntegrityError as error:
                self._raise_duplicate(error, values)
                raise
            return _agent(result.one())

    async def get(self, agent_id: int) -> Agent | None:
        return await self._one(agents.c.id == agent_id)

    async def by_username(self, username: str) -> Agent | None:
        return await self._one(agents.c.username == username.strip())

    async def by_extension(self, extension: str) -> Agent | None:
        return await self._one(agents.c.extension == extension.strip())

    async def list(self, active_only: bool = True) -> builtins.list[Agent]:
        query = select(agents).order_by(agents.c.extension, agents.c.id)
        if active_only:
            query = query.where(agents.c.active.is_(True))
        async with self._engine.connect() as conn:
            return [_agent(row) for row in await conn.execute(query)]

    async def update(self, agent_id: int, **fields: Any) -> Agent:
        """Change any of username, display_name, extension, email, role, active
        (and the routing profile). Deactivating an agent or changing their role
        revokes their sessions."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise TypeError(f"cannot update agent field(s): {', '.join(sorted(unknown))}")
        values = dict(fields)
        for name in ("username", "display_name", "extension"):
            if name in values:
                values[name] = _clean(name, values[name])
        if "role" in values:
            values["role"] = _check_role(values["role"])
        if values.get("email"):
            values["email"] = values["email"].strip().lower()
        if "active" in values:
            values["active"] = bool(values["active"])
        _check_profile(values)
        async with self._engine.begin() as conn:
            await self._refuse_duplicates(conn, values, exclude_id=agent_id)
            if "role" in values or values.get("active") is False:
                current = (
                    await conn.execute(
                        select(agents.c.role, agents.c.active).where(agents.c.id == agent_id)
                    )
                ).first()
                if current is not None and (
                    values.get("role", current.role) != current.role
                    or (current.active and values.get("active") is False)
                ):
                    # A deactivated agent or a changed role: their sessions end.
                    values["token_version"] = agents.c.token_version + 1
            query = update(agents).where(agents.c.id == agent_id)
            if values:
                try:
                    result = await conn.execute(query.values(**values).returning(agents))
                except exc.IntegrityError as error:
                    self._raise_duplicate(error, values)
                    raise
                row = result.one_or_none()
            else:
                row = (await conn.execute(select(agents).where(agents.c.id == agent_id))).first()
            if row is None:
                raise NotFoundError("agent", agent_id)
            return _agent(row)

    async def _one(self, condition: Any) -> Agent | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(agents).where(condition))).first()
        return None if row is None else _agent(row)

    @staticmethod
    async def _refuse_duplicates(
        conn: AsyncConnection, values: dict[str, Any], *, exclude_id: int | None
    ) -> None:
        for field in ("username", "extension"):
            if field not in values:
                continue
            query = select(agents.c.id).where(agents.c[field] == values[field])
            if exclude_id is not None:
                query = query.where(agents.c.id != exclude_id)
            if (await conn.execute(query)).first() is not None:
                raise DuplicateError("agent", field, values[field])

    @staticmethod
    def _raise_duplicate(error: exc.IntegrityError, values: dict[str, Any]) -> None:
        # Lost a race with a concurrent writer after the check above.
        message = str(error.orig)
        for field in ("extension", "username"):
            if field in values and field in message:
                raise DuplicateError("agent", field, values[field]) from error
