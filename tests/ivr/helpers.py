"""Helpers shared by tests that need what the IVR stores."""

from __future__ import annotations

from ivr.model import Session
from ivr.repository import IvrRepository


async def answer_survey(
    ivr: IvrRepository, interaction_id: int, score: int, *, call_ref: str
) -> str:
    """A caller's post-call survey answer as the IVR stores it: a survey run
    linked to the interaction, with its score. Returns the run's id."""
    row = await ivr.create(
        edge="agi",
        call_ref=call_ref,
        session=Session(flow="support", node="survey", language="en", phase="survey"),
        phase="survey",
        interaction_id=interaction_id,
    )
    await ivr.record_survey(row, score)
    return row
