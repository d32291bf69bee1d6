"""IVR sessions in the store (``ivr.persistence.ivr_sessions``).

``IvrRepository`` is the runner's (``ivr.runner``) and voice routing's view of
the table: ``create`` when a call enters a flow, ``save`` after every
interpreter step (before the adapter acts on it), ``link`` once routing made
an interaction and task of it, ``record_survey`` for the post-call score,
``fail_in_progress`` for the sessions an earlier run left behind, and
the finders: ``handoff_for`` (voice routing: the ``queued`` run of a call,
by the Asterisk uniqueids of its channels or an ``ivr_sessions.id``),
``get``, ``latest_for_call_ref``, ``survey_for_interaction``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import desc, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.persistence import interactions
from ivr.model import Session
from ivr.persistence import ivr_sessions
from store.types import utc_now

__all__ = ["IvrRepository", "IvrSessionRow", "SurveyFigures"]

Edge = str  # "agi" | "twilio"


@dataclass(frozen=True)
class SurveyFigures:
    """A queue's post-call survey answers over a period (``survey_figures``)."""

    count: int  # interactions rated
    average: float  # their mean score


@dataclass(frozen=True)
class IvrSessionRow:
    id: str
    edge: str
    phase: str
    origin_id: str | None
    call_ref: str
    call_id: str | None
    flow: str
    node: str
    session: Session
    data: Mapping[str, Any] | None
    outcome: str
    reason: str | None
    abandoned_node: str | None
    queue: str | None
    customer_id: int | None
    interaction_id: int | None
    task_id: str | None
    survey_score: int | None
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None


def _row(row: Row[Any]) -> IvrSessionRow:
    m = row._mapping
    return IvrSessionRow(
        id=m["id"],
        edge=m["edge"],
        phase=m["phase"],
        origin_id=m["origin_id"],
        call_ref=m["call_ref"],
        call_id=m["call_id"],
        flow=m["flow"],
        node=m["node"],
        session=Session.from_json(m["session"]),
        data=m["data"],
        outcome=m["outcome"],
        reason=m["reason"],
        abandoned_node=m["abandoned_node"],
        queue=m["queue"],
        customer_id=m["customer_id"],
        interaction_id=m["interaction_id"],
        task_id=m["task_id"],
        survey_score=m["survey_score"],
        started_at=m["started_at"],
        updated_at=m["updated_at"],
        ended_at=m["ended_at"],
    )


def _customer_id(session: Session) -> int | None:
    value = session.customer_id
    return int(value) if value is not None and value.isdigit() else None


def session_data(session: Session) -> dict[str, Any]:
    """What the caller told the IVR: the collected attributes, the language, the
    flow and the nodes visited (``data`` on the row, ``ivr`` on the pop)."""
    return {
        "flow": session.flow,
        "language": session.language,
        "attributes": dict(session.attributes),
        "path": list(session.path),
    }


class IvrRepository:
    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def create(
        self,
        *,
        edge: Edge,
        call_ref: str,
        session: Session,
        phase: str = "flow",
        origin_id: str | None = None,
        interaction_id: int | None = None,
        call_id: str | None = None,
    ) -> str:
        """A new row (outcome ``in_progress``); returns its id."""
        now = self._clock()
        row_id = uuid.uuid4().hex
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(ivr_sessions).values(
                    id=row_id,
                    edge=edge,
                    phase=phase,
                    origin_id=origin_id,
                    call_ref=call_ref[:64],
                    call_id=call_id,
                    flow=session.flow,
                    node=session.node,
                    session=session.to_json(),
                    data=session_data(session),
                    outcome="in_progress",
                    customer_id=_customer_id(session),
                    interaction_id=interaction_id,
                    started_at=now,
                    updated_at=now,
                )
            )
        return row_id

    async def save(
        self,
        row_id: str,
        session: Session,
        *,
        outcome: str | None = None,
        node: str | None = None,
        reason: str = "",
        queue: str | None = None,
        survey: bool = False,
        task: Mapping[str, Any] | None = None,
    ) -> None:
        """Store the session after a step. ``outcome``: the session ended (for
        ``abandoned``, ``node`` is where the caller hung up). ``queue``/``survey``:
        an ``Enqueue`` (``data.survey``: run the post-call survey; ``data.task``:
        the ``TaskRequest`` as JSON, for voice routing)."""
        now = self._clock()
        data = session_data(session)
        if survey:
            data["survey"] = True
        if task is not None:
            data["task"] = dict(task)
        values: dict[str, Any] = {
            "node": node or session.node,
            "session": session.to_json(),
            "data": data,
            "customer_id": _customer_id(session),
            "updated_at": now,
        }
        if outcome is not None:
            values["outcome"] = outcome
            values["ended_at"] = now
            values["reason"] = reason[:200] or None
            if outcome == "abandoned":
                values["abandoned_node"] = node or session.node
        if queue is not None:
            values["queue"] = queue
        async with self._engine.begin() as conn:
            await conn.execute(
                update(ivr_sessions).where(ivr_sessions.c.id == row_id).values(**values)
            )

    async def link(
        self,
        row_id: str,
        *,
        call_id: str | None = None,
        interaction_id: int | None = None,
        task_id: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"updated_at": self._clock()}
        if call_id is not None:
            values["call_id"] = call_id
        if interaction_id is not None:
            values["interaction_id"] = interaction_id
        if task_id is not None:
            values["task_id"] = task_id
        async with self._engine.begin() as conn:
            await conn.execute(
                update(ivr_sessions).where(ivr_sessions.c.id == row_id).values(**values)
            )

    async def reopen(self, row_id: str) -> None:
        """A flow run that ended (``transferred``) goes on (its transfer failed
        after all): ``in_progress`` again."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(ivr_sessions)
                .where(ivr_sessions.c.id == row_id)
                .values(outcome="in_progress", ended_at=None, reason=None, updated_at=self._clock())
            )

    async def record_survey(self, row_id: str, score: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(ivr_sessions)
                .where(ivr_sessions.c.id == row_id)
                .values(survey_score=score, updated_at=self._clock())
            )

    async def fail_in_progress(self, edge: Edge, reason: str, *, idle_before: datetime) -> int:
        """End the ``edge`` sessions still ``in_progress`` whose last step is
        older than ``idle_before`` as ``failed`` with ``reason`` (FastAGI at
        start: the connections of an earlier run are gone and their callers
        went on in the dialplan; the cut-off spares the live sessions of other
        nodes sharing the store). Returns how many."""
        now = self._clock()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(ivr_sessions)
                .where(
                    ivr_sessions.c.edge == edge,
                    ivr_sessions.c.outcome == "in_progress",
                    ivr_sessions.c.updated_at < idle_before,
                )
                .values(outcome="failed", reason=reason[:200], ended_at=now, updated_at=now)
            )
        return int(result.rowcount or 0)

    async def get(self, row_id: str) -> IvrSessionRow | None:
        return await self._first(select(ivr_sessions).where(ivr_sessions.c.id == row_id))

    async def latest_for_call_ref(
        self, call_ref: str, *, phase: str = "flow", outcome: str | None = None
    ) -> IvrSessionRow | None:
        query = select(ivr_sessions).where(
            ivr_sessions.c.call_ref == call_ref, ivr_sessions.c.phase == phase
        )
        if outcome is not None:
            query = query.where(ivr_sessions.c.outcome == outcome)
        return await self._first(query.order_by(desc(ivr_sessions.c.started_at)))

    async def queued_for_call_ref(self, call_ref: str) -> list[IvrSessionRow]:
        """The flow runs of a caller that ended ``queued``, newest first (a call
        has a few: the support flow, then the payment line, say)."""
        query = (
            select(ivr_sessions)
            .where(
                ivr_sessions.c.call_ref == call_ref,
                ivr_sessions.c.phase == "flow",
                ivr_sessions.c.outcome == "queued",
            )
            .order_by(desc(ivr_sessions.c.started_at))
        )
        async with self._engine.connect() as conn:
            return [_row(r) for r in await conn.execute(query)]

    async def handoff_for(
        self, call_refs: Iterable[str], session_id: str | None = None
    ) -> IvrSessionRow | None:
        """The newest ``queued`` flow run of a call not yet linked to a task:
        by its id (``CALLWRIGHT_IVR_SESSION``) or by the uniqueids of the
        call's channels (``call_ref`` of FastAGI sessions)."""
        refs = [r for r in call_refs if r]
        conditions = []
        if session_id:
            conditions.append(ivr_sessions.c.id == session_id)
        if refs:
            conditions.append(ivr_sessions.c.call_ref.in_(refs))
        if not conditions:
            return None
        query = (
            select(ivr_sessions)
            .where(
                or_(*conditions),
                ivr_sessions.c.phase == "flow",
                ivr_sessions.c.outcome == "queued",
                ivr_sessions.c.task_id.is_(None),
            )
            .order_by(desc(ivr_sessions.c.started_at))
        )
        return await self._first(query)

    async def survey_for_interaction(self, interaction_id: int) -> int | None:
        """The post-call survey score stored for an interaction, or None."""
        query = (
            select(ivr_sessions.c.survey_score)
            .where(
                ivr_sessions.c.interaction_id == interaction_id,
                ivr_sessions.c.survey_score.is_not(None),
            )
            .order_by(desc(ivr_sessions.c.updated_at))
            .limit(1)
        )
        async with self._engine.connect() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return None if value is None else int(value)

    async def survey_figures(
        self, since: datetime, until: datetime | None = None
    ) -> dict[str, SurveyFigures]:
        """Post-call survey answers given in [since, until), per queue of the
        interaction they rate: how many interactions were rated and their mean
        score. One answer per interaction, its latest (as the interaction list
        shows it)."""
        query = (
            select(
                ivr_sessions.c.interaction_id,
                ivr_sessions.c.survey_score,
                interactions.c.queue,
            )
            .join(interactions, interactions.c.id == ivr_sessions.c.interaction_id)
            .where(
                ivr_sessions.c.phase == "survey",
                ivr_sessions.c.survey_score.is_not(None),
                ivr_sessions.c.updated_at >= since,
                interactions.c.queue.is_not(None),
            )
            .order_by(ivr_sessions.c.updated_at, ivr_sessions.c.id)
        )
        if until is not None:
            query = query.where(ivr_sessions.c.updated_at < until)
        latest: dict[int, tuple[str, int]] = {}
        async with self._engine.connect() as conn:
            for interaction_id, score, queue in await conn.execute(query):
                latest[int(interaction_id)] = (str(queue), int(score))
        totals: dict[str, list[int]] = {}
        for queue, score in latest.values():
            totals.setdefault(queue, []).append(score)
        return {
            queue: SurveyFigures(len(scores), sum(scores) / len(scores))
            for queue, scores in totals.items()
        }

    async def for_interaction(self, interaction_id: int) -> list[IvrSessionRow]:
        query = (
            select(ivr_sessions)
            .where(ivr_sessions.c.interaction_id == interaction_id)
            .order_by(ivr_sessions.c.started_at)
        )
        async with self._engine.connect() as conn:
            return [_row(r) for r in (await conn.execute(query)).all()]

    async def _first(self, query: Any) -> IvrSessionRow | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(query.limit(1))).first()
        return None if row is None else _row(row)
