"""The IVR runner (ivr/runner.py) over the real store (SQLite and PostgreSQL):
every step stored, lookups answered from the CRM (VIP by the #vip tag), the
outcome and the node of an abandoned call, callbacks and voicemails becoming
routing tasks with the number, the survey score stored for the interaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.repository import Customer, CustomerRepository, InteractionRepository
from ivr import CallInfo, Digits, Done, GatherDigits, HungUp, NoInput, load_flow
from ivr.repository import IvrRepository
from ivr.runner import IvrRunner, UnknownFlow
from tests.store.conftest import empty_engine, engine  # noqa: F401 (fixtures)

FLOW = load_flow(Path(__file__).resolve().parents[2] / "flows" / "support.toml")
OPEN = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # a Wednesday, 12:00 in Paris
CLOSED = datetime(2026, 6, 3, 20, 0, tzinfo=UTC)


class Tasks:
    def __init__(self) -> None:
        self.submitted: list[tuple[Any, int | None]] = []

    async def submit(
        self, spec: Any, *, interaction_id: int | None = None, call_id: str | None = None
    ) -> list[Any]:
        self.submitted.append((spec, interaction_id))
        return []


@pytest.fixture
def db(engine: AsyncEngine) -> AsyncEngine:  # noqa: F811
    return engine


def make_runner(db: AsyncEngine, now: datetime, tasks: Tasks | None = None) -> IvrRunner:
    prefetched: list[Customer] = []
    runner = IvrRunner(
        {"support": FLOW},
        IvrRepository(db),
        customers=CustomerRepository(db),
        interactions=InteractionRepository(db),
        tasks=lambda: tasks,
        prefetch=prefetched.append,
        clock=lambda: now,
    )
    runner.prefetched = prefetched  # type: ignore[attr-defined]
    return runner


async def test_known_vip_caller_is_queued_with_everything_collected(db: AsyncEngine) -> None:
    customers = CustomerRepository(db)
    ann = await customers.create(
        "Ann Vip", phones=["+33612345678"], account_number="1234567", notes="Key account #VIP"
    )
    runner = make_runner(db, OPEN)
    turn = await runner.begin("agi", "support", CallInfo("+33612345678", "5000", "1796.1"))
    assert isinstance(turn.wait, GatherDigits)  # the language menu, after the lookup
    assert [c.id for c in runner.prefetched] == [ann.id]  # type: ignore[attr-defined]
    stored = await runner.repo.get(turn.session_id)
    assert stored is not None and stored.outcome == "in_progress"
    assert stored.node == "language" and stored.customer_id == ann.id
    turn = await runner.feed(turn, Digits("2"))  # français
    turn = await runner.feed(turn, Digits("1"))  # billing
    assert isinstance(turn.wait, Done) and turn.wait.outcome == "queued"
    enqueue = turn.enqueue
    assert enqueue is not None and enqueue.task.queue == "billing" and enqueue.survey
    assert enqueue.task.priority == 10 and enqueue.task.customer_id == str(ann.id)
    row = await runner.repo.handoff_for(["1796.1"])
    assert row is not None and row.id == turn.session_id and row.queue == "billing"
    assert row.data is not None and row.data["attributes"]["intent"] == "billing"
    assert row.data["language"] == "fr" and row.data["survey"] is True


async def test_hangup_mid_menu_is_abandoned_at_that_node(db: AsyncEngine) -> None:
    runner = make_runner(db, OPEN)
    turn = await runner.begin("agi", "support", CallInfo("+15550009999", "5000", "u-1"))
    turn = await runner.feed(turn, Digits("1"))
    turn = await runner.feed(turn, Digits("7"))  # garbage: re-prompt
    assert isinstance(turn.wait, GatherDigits) and turn.session.node == "main_menu"
    turn = await runner.feed(turn, HungUp())
    row = await runner.repo.get(turn.session_id)
    assert row is not None
    assert (row.outcome, row.abandoned_node) == ("abandoned", "main_menu")
    assert row.ended_at is not None
    assert await runner.repo.handoff_for(["u-1"]) is None


async def test_unknown_flow_is_refused(db: AsyncEngine) -> None:
    runner = make_runner(db, OPEN)
    with pytest.raises(UnknownFlow, match="nosuch"):
        await runner.begin("agi", "nosuch", CallInfo("1", "2", "3"))


async def test_callback_when_closed_becomes_a_task_with_the_number(db: AsyncEngine) -> None:
    tasks = Tasks()
    runner = make_runner(db, CLOSED, tasks)
    turn = await runner.begin("agi", "support", CallInfo("+33612345678", "5000", "u-2"))
    turn = await runner.feed(turn, NoInput())
    turn = await runner.feed(turn, NoInput())  # no language choice: English
    turn = await runner.feed(turn, Digits("2"))  # closed menu: call me back
    assert isinstance(turn.wait, Done) and turn.wait.outcome == "callback"
    ((spec, interaction_id),) = tasks.submitted
    assert spec.channel == "callback" and spec.queue_id == "support"
    assert spec.attributes["callback_number"] == "+33612345678"
    assert spec.attributes["closed_choice"] == "2"  # the key pressed
    row = await runner.repo.get(turn.session_id)
    assert row is not None and row.outcome == "callback"
    assert row.task_id == spec.id and row.interaction_id == interaction_id is not None


async def test_survey_after_a_queued_call_is_stored_for_the_interaction(
    db: AsyncEngine,
) -> None:
    runner = make_runner(db, OPEN)
    turn = await runner.begin("agi", "support", CallInfo("+15550009999", "5000", "u-3"))
    turn = await runner.feed(turn, Digits("1"))
    turn = await runner.feed(turn, Digits("0"))  # operator
    assert isinstance(turn.wait, Done) and turn.wait.outcome == "queued"
    interaction = await InteractionRepository(db).create(
        channel="voice", direction="inbound", started_at=OPEN, call_id="u-3"
    )
    await runner.repo.link(turn.session_id, call_id="u-3", interaction_id=interaction.id)
    survey = await runner.begin_survey("agi", "u-3")
    assert survey is not None and survey.session.phase == "survey"
    survey = await runner.feed(survey, Digits("9"))  # not 1-5: asked again
    survey = await runner.feed(survey, Digits("4"))
    assert isinstance(survey.wait, Done) and survey.wait.outcome == "completed"
    assert await runner.repo.survey_for_interaction(interaction.id) == 4
    assert await runner.begin_survey("agi", "nobody") is None


async def test_idle_sessions_left_in_progress_are_failed_for_their_edge_only(
    db: AsyncEngine,
) -> None:
    earlier = IvrRepository(db, clock=lambda: OPEN - timedelta(hours=1))
    runner = make_runner(db, OPEN)
    runner.repo = earlier
    old_agi = await runner.begin("agi", "support", CallInfo("+15550009999", "5000", "u-4"))
    old_twilio = await runner.begin("twilio", "support", CallInfo("+15550009999", "5000", "CA1"))
    runner.repo = IvrRepository(db, clock=lambda: OPEN)
    live_agi = await runner.begin("agi", "support", CallInfo("+15550009999", "5000", "u-5"))
    cutoff = OPEN - timedelta(minutes=15)
    assert await runner.repo.fail_in_progress("agi", "restarted", idle_before=cutoff) == 1
    row = await runner.repo.get(old_agi.session_id)
    assert row is not None and (row.outcome, row.reason) == ("failed", "restarted")
    for untouched in (old_twilio, live_agi):  # another edge; a live session elsewhere
        other = await runner.repo.get(untouched.session_id)
        assert other is not None and other.outcome == "in_progress"
