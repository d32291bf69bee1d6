"""The shipped support flow (flows/support.toml) walked end to end, as an adapter
would: every session through JSON between inputs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr import (
    AwaitLookup,
    AwaitRecording,
    AwaitTransfer,
    Callback,
    CallInfo,
    Digits,
    Done,
    Enqueue,
    Flow,
    GatherDigits,
    Hangup,
    HungUp,
    Input,
    LookupResult,
    NoInput,
    RecordingDone,
    Say,
    Session,
    SetLanguage,
    Step,
    SurveyScore,
    TransferCompleted,
    TransferFailed,
    Voicemail,
    feed,
    start,
    start_survey,
)
from ivr.loader import load_flows

ROOT = Path(__file__).resolve().parents[2]
OPEN = datetime(2026, 6, 3, 9, 30, tzinfo=UTC)  # Wednesday 11:30 in Paris
CLOSED = datetime(2026, 6, 7, 9, 30, tzinfo=UTC)  # Sunday
HOLIDAY = datetime(2026, 7, 14, 9, 30, tzinfo=UTC)  # Tuesday, Bastille Day
CALLER = CallInfo(caller_id="+33 6 12 34 56 78", dialed="+33170000000", ref="1700000000.42")


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flows([ROOT / "flows" / "support.toml"], ["support", "billing"])["support"]


def run(flow: Flow, step: Step, now: datetime, *inputs: Input) -> Step:
    for event in inputs:
        assert not step.done
        session = Session.from_json(step.session.to_json())
        step = feed(flow, session, event, now)
    return step


def texts(step: Step) -> list[str]:
    out = [a.text for a in step.actions if isinstance(a, Say)]
    if isinstance(step.wait, GatherDigits | AwaitRecording):
        out += [p.text for p in step.wait.prompts]
    return out


def enqueued(step: Step) -> Enqueue:
    found = [a for a in step.actions if isinstance(a, Enqueue)]
    assert len(found) == 1
    return found[0]


def test_a_known_vip_in_french_reaches_billing_first_then_rates_the_call(flow: Flow) -> None:
    step = start(flow, CALLER, OPEN)
    assert texts(step) == ["Welcome to Callwright support."]
    assert step.wait == AwaitLookup("caller_id", "+33612345678")

    step = run(flow, step, OPEN, LookupResult({"id": 17, "name": "Ada Lovelace", "vip": True}))
    assert texts(step) == ["For English, press 1."]

    step = run(flow, step, OPEN, Digits("2"))
    assert step.actions == (SetLanguage("fr", "fr-FR"),)
    assert texts(step)[0].startswith("Pour la facturation, tapez 1.")

    step = run(flow, step, OPEN, Digits("1"))  # billing; already known: no account asked

    task = enqueued(step).task
    assert enqueued(step).survey is True
    assert (task.queue, task.priority, task.language, task.customer_id) == (
        "billing",
        10,
        "fr",
        "17",
    )
    assert task.skills == {"billing": 1}
    assert task.attributes == {
        "vip": True,
        "intent": "billing",
        "segment": "vip",
        "caller_id": "+33 6 12 34 56 78",
        "dialed": "+33170000000",
        "ivr_flow": "support",
    }
    assert texts(step) == ["Merci. Un conseiller facturation va vous répondre."]
    assert step.wait == Done("queued", "to_billing")

    survey = start_survey(flow, Session.from_json(step.session.to_json()), OPEN)
    assert survey.actions == (SetLanguage("fr", "fr-FR"),)
    assert texts(survey) == ["Notez cet appel de 1, mauvais, à 5, excellent."]
    end = run(flow, survey, OPEN, Digits("9"), Digits("5"))
    assert end.actions[0] == SurveyScore(5, 5)
    assert texts(end) == ["Merci pour votre avis. Au revoir."] and end.actions[-1] == Hangup()
    assert end.wait == Done("completed", "survey_thanks")


def test_an_unknown_caller_types_an_account_after_a_typo_and_is_routed_with_it(
    flow: Flow,
) -> None:
    step = start(flow, CALLER, OPEN)
    step = run(flow, step, OPEN, LookupResult(None), Digits("1"), Digits("2"))
    assert texts(step) == ["Please type your account number, then the hash key."]

    step = run(flow, step, OPEN, Digits("12#"))
    assert texts(step)[0] == "An account number has 6 to 10 digits."

    step = run(flow, step, OPEN, Digits("00424242#"))
    assert step.wait == AwaitLookup("account_number", "00424242")

    step = run(flow, step, OPEN, LookupResult({"id": 5, "account_number": "00424242"}))
    task = enqueued(step).task
    assert (task.queue, task.priority, task.customer_id) == ("support", 0, "5")
    assert task.attributes["account_number"] == "00424242"
    assert task.attributes["intent"] == "support"
    assert step.session.path == (
        "welcome",
        "lookup_caller",
        "language",
        "english",
        "hours",
        "main_menu",
        "known",
        "account",
        "lookup_account",
        "route",
        "by_intent",
        "to_support",
    )


def test_an_account_that_is_not_found_still_reaches_an_agent(flow: Flow) -> None:
    step = start(flow, CallInfo(caller_id="anonymous"), OPEN)  # no lookup by caller ID
    assert isinstance(step.wait, GatherDigits)
    step = run(flow, step, OPEN, Digits("1"), Digits("1"), Digits("999999"), LookupResult(None))
    assert texts(step)[0] == "We could not find that account; an agent will help you."
    task = enqueued(step).task
    assert task.queue == "billing" and task.customer_id is None
    assert task.attributes["account_number"] == "999999"


def test_a_silent_caller_ends_with_an_operator_in_english(flow: Flow) -> None:
    step = start(flow, CALLER, OPEN)
    step = run(flow, step, OPEN, LookupResult(None), NoInput(), NoInput())
    assert step.session.language == "en" and step.session.node == "main_menu"
    step = run(flow, step, OPEN, NoInput(), NoInput(), NoInput())

    task = enqueued(step).task
    assert task.queue == "support" and task.attributes["operator"] is True
    assert step.wait == Done("queued", "operator")


def test_closed_on_sunday_the_caller_leaves_a_voicemail(flow: Flow) -> None:
    step = start(flow, CALLER, CLOSED)
    step = run(flow, step, CLOSED, LookupResult(None), Digits("1"))
    assert texts(step)[0].startswith("Our lines are open Monday to Friday")

    step = run(flow, step, CLOSED, Digits("1"))
    assert isinstance(step.wait, AwaitRecording) and step.wait.max_seconds == 120

    step = run(flow, step, CLOSED, RecordingDone("voicemail/1700000000.42.wav", 23.0))
    voicemail = step.actions[0]
    assert isinstance(voicemail, Voicemail)
    assert voicemail.number == "+33612345678" and voicemail.task.queue == "support"
    assert voicemail.task.attributes["closed_choice"] == "1"
    assert step.wait == Done("voicemail", "voicemail")


def test_on_a_holiday_an_anonymous_caller_asks_for_a_callback_to_a_typed_number(
    flow: Flow,
) -> None:
    step = start(flow, CallInfo(caller_id=""), HOLIDAY)
    step = run(flow, step, HOLIDAY, Digits("2"))
    assert texts(step)[:2] == [
        "Nous sommes fermés aujourd'hui, jour férié.",
        "Nos lignes sont ouvertes du lundi au vendredi de 8 h à 18 h, et le samedi matin. "
        "Pour laisser un message, tapez 1. Pour être rappelé, tapez 2.",
    ]

    step = run(flow, step, HOLIDAY, Digits("2"), Digits("0612345678#"))

    callback = step.actions[0]
    assert isinstance(callback, Callback)
    assert callback.number == "0612345678" and callback.task.language == "fr"
    assert step.wait == Done("callback", "callback_typed")


def test_the_partner_transfer_connects_or_falls_back_to_support(flow: Flow) -> None:
    step = start(flow, CALLER, OPEN)
    step = run(flow, step, OPEN, LookupResult(None), Digits("1"), Digits("3"))
    assert step.wait == AwaitTransfer("+15555550100", 30)

    done = run(flow, step, OPEN, TransferCompleted())
    fallback = run(flow, step, OPEN, TransferFailed("BUSY"))

    assert done.wait == Done("transferred", "partner")
    assert texts(fallback)[0] == "Our partner cannot answer right now."
    assert enqueued(fallback).task.attributes["intent"] == "partner"
    assert fallback.wait == Done("queued", "to_support")


def test_a_caller_hanging_up_in_the_main_menu_is_abandoned_there(flow: Flow) -> None:
    step = start(flow, CALLER, OPEN)
    step = run(flow, step, OPEN, LookupResult(None), Digits("1"), Digits("#"), HungUp())
    assert step.wait == Done("abandoned", "main_menu")
    assert step.session.outcome == "abandoned"
    assert step.actions == ()
