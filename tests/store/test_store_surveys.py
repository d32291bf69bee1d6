"""Post-call survey figures per queue (``IvrRepository.survey_figures``), on
SQLite and PostgreSQL: one answer per interaction (its latest), counted in the
queue of the interaction it rates, within the period asked for."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from crm.repository import InteractionRepository
from ivr.model import Session
from ivr.repository import IvrRepository, SurveyFigures
from tests.ivr.helpers import answer_survey
from tests.store.conftest import FakeClock


async def answer(ivr: IvrRepository, interaction_id: int, score: int) -> None:
    await answer_survey(ivr, interaction_id, score, call_ref=f"survey-{interaction_id}-{score}")


async def test_each_queue_gets_the_count_and_mean_of_its_interactions_answers(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    interactions = InteractionRepository(engine, clock=clock)
    ivr = IvrRepository(engine, clock=clock)
    made = {}
    for name, queue in (("a", "support"), ("b", "support"), ("c", "billing"), ("d", None)):
        made[name] = (
            await interactions.create(
                channel="voice", direction="inbound", started_at=clock(), queue=queue
            )
        ).id
    start = clock()

    clock.advance(60)
    await answer(ivr, made["a"], 2)
    clock.advance(1)
    await answer(ivr, made["a"], 5)  # answered again: the latest counts
    await answer(ivr, made["b"], 4)
    await answer(ivr, made["c"], 1)
    await answer(ivr, made["d"], 3)  # no queue: in no queue's figures
    # A flow run that is not a survey, with a score: not an answer.
    other = await ivr.create(
        edge="agi",
        call_ref="flow-1",
        session=Session(flow="support", node="menu", language="en"),
        interaction_id=made["c"],
    )
    await ivr.record_survey(other, 5)
    clock.advance(3600)
    await answer(ivr, made["c"], 5)  # later: outside the first period

    first = await ivr.survey_figures(start, start + timedelta(minutes=30))
    assert first == {"support": SurveyFigures(2, 4.5), "billing": SurveyFigures(1, 1.0)}
    everything = await ivr.survey_figures(start)
    assert everything == {"support": SurveyFigures(2, 4.5), "billing": SurveyFigures(1, 5.0)}
    assert await ivr.survey_figures(start + timedelta(days=1)) == {}
