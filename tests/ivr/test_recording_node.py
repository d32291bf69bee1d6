"""The ``recording`` node (pause/resume the call's recording), the collect
node's ``check = "luhn"`` and ``secret``, and the queue node's ``origin``: loaded
and refused by name, checked as a graph, walked by the pure interpreter; and the
sample payment flow."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr import (
    CallInfo,
    Digits,
    Done,
    Enqueue,
    Flow,
    FlowError,
    GatherDigits,
    Hangup,
    NoInput,
    PauseRecording,
    ResumeRecording,
    Session,
    feed,
    load_flow,
    parse_flow,
    problems,
    start,
    validate_flow,
)
from ivr.model import luhn_ok, mask_secret

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
CARD = "4111111111111111"  # a Luhn-valid test card number
HEAD = '[flow]\nname = "pay"\nstart = "s"\nlanguage = "en"\ntimezone = "Europe/Paris"\n'
PAYMENT = """
[nodes.s]
kind = "recording"
action = "pause"
next = "card"
[nodes.card]
kind = "collect"
prompt = "Card number, then hash."
var = "card"
check = "luhn"
secret = true
min_digits = 12
max_digits = 19
retries = 1
invalid = "Not valid."
next = "r"
failure = "r"
[nodes.r]
kind = "recording"
action = "resume"
next = "q"
[nodes.q]
kind = "queue"
queue = "support"
origin = true
"""


def flow_of(nodes: str) -> Flow:
    return parse_flow(tomllib.loads(HEAD + nodes))


def refused(nodes: str) -> str:
    with pytest.raises(FlowError) as info:
        flow_of(nodes)
    return str(info.value)


def test_luhn_accepts_card_numbers_and_refuses_a_wrong_check_digit() -> None:
    assert luhn_ok(CARD) and luhn_ok("79927398713") and luhn_ok("5555555555554444")
    assert not luhn_ok("4111111111111112") and not luhn_ok("79927398710")
    assert not luhn_ok("0")  # one digit is no card number


def test_a_secret_keeps_the_last_four_of_a_card_and_nothing_of_a_short_code() -> None:
    assert mask_secret(CARD) == "************1111"
    assert mask_secret("12345678901") == "***********"
    assert mask_secret("1234") == "****"


def test_pause_then_card_then_resume_then_back_to_the_origin_queue() -> None:
    flow = flow_of(PAYMENT)
    validate_flow(flow, ("support", "billing"))
    first = start(flow, CallInfo(ref="u-1", origin_queue="billing"), NOW)
    assert PauseRecording() in first.actions
    assert isinstance(first.wait, GatherDigits) and first.session.node == "card"
    assert first.wait.max_digits == 19 and first.wait.min_digits == 12

    wrong = feed(flow, first.session, Digits("4111111111111112#"), NOW)
    assert wrong.session.node == "card" and wrong.session.attempt == 1
    assert ResumeRecording() not in wrong.actions  # still paused while re-asked

    last = feed(flow, Session.from_json(wrong.session.to_json()), Digits(CARD + "#"), NOW)
    assert last.actions.index(ResumeRecording()) < len(last.actions) - 1
    (enqueue,) = [a for a in last.actions if isinstance(a, Enqueue)]
    assert enqueue.task.queue == "billing"  # where the call came from
    assert last.wait == Done("queued", "q")
    assert last.session.attributes["card"] == "************1111"
    assert enqueue.task.attributes["card"] == "************1111"
    assert CARD not in last.session.to_json() and CARD not in repr(enqueue)


def test_without_an_origin_queue_the_queue_node_uses_its_own_queue() -> None:
    flow = flow_of(PAYMENT)
    step = start(flow, CallInfo(ref="u-2"), NOW)
    step = feed(flow, step.session, Digits(CARD), NOW)
    (enqueue,) = [a for a in step.actions if isinstance(a, Enqueue)]
    assert enqueue.task.queue == "support"


def test_a_caller_who_never_types_a_valid_card_still_gets_the_recording_resumed() -> None:
    flow = flow_of(PAYMENT)
    step = start(flow, CallInfo(ref="u-3"), NOW)
    step = feed(flow, step.session, NoInput(), NOW)
    step = feed(flow, step.session, Digits("1234567890123"), NOW)  # not Luhn-valid
    assert ResumeRecording() in step.actions and "card" not in step.session.attributes
    assert step.wait == Done("queued", "q")
    assert "1234567890123" not in step.session.to_json()


def test_a_session_from_before_origin_queue_existed_still_loads() -> None:
    flow = flow_of(PAYMENT)
    step = start(flow, CallInfo(ref="u-4", origin_queue="billing"), NOW)
    data = step.session.to_dict()
    assert data["origin_queue"] == "billing"
    del data["origin_queue"]
    assert Session.from_dict(data).origin_queue == ""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('action = "pause"', 'action = "stop"'),
            "flow pay, node s: action: expected 'pause' or 'resume', got 'stop'",
        ),
        (
            ('action = "pause"\n', ""),
            "flow pay, node s: action: missing (expected 'pause' or 'resume')",
        ),
        (
            ('next = "card"', 'next = "card"\nmute = true'),
            "flow pay, node s: mute: unknown key (known keys: action, kind, next)",
        ),
        (
            ('check = "luhn"', 'check = "mod11"'),
            "flow pay, node card: check: expected one of 'none', 'luhn', got 'mod11'",
        ),
        (
            ("secret = true", 'secret = "yes"'),
            "flow pay, node card: secret: expected true or false, got 'yes'",
        ),
        (
            ("min_digits = 12", "min_digits = 1"),
            "flow pay, node card: min_digits: a luhn check needs at least 2 digits",
        ),
        (
            ('var = "card"', 'var = "card"\nformat = "date"'),
            "flow pay, node card: min_digits: expected an integer 8-8, got 12",
        ),
        (
            ("origin = true", "origin = 1"),
            "flow pay, node q: origin: expected true or false, got 1",
        ),
    ],
)
def test_bad_values_are_refused_naming_flow_node_and_key(
    change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in PAYMENT
    assert refused(PAYMENT.replace(old, new, 1)).startswith(message)


def test_luhn_on_a_date_is_refused() -> None:
    nodes = PAYMENT.replace("min_digits = 12\nmax_digits = 19\n", 'format = "date"\n')
    assert refused(nodes) == (
        "flow pay, node card: check: a luhn check takes format = 'digits', not a date"
    )


def test_a_path_from_a_pause_to_a_queue_without_a_resume_is_refused() -> None:
    flow = flow_of(PAYMENT.replace('failure = "r"', 'failure = "q"'))
    found = [str(p) for p in problems(flow, ("support",))]
    assert found == [
        "flow pay, node s: the recording paused here is still paused at queue node 'q': "
        "put a recording node with action = 'resume' before it"
    ]


def test_a_pause_before_a_hangup_is_allowed_the_call_ends() -> None:
    nodes = PAYMENT.replace('failure = "r"', 'failure = "bye"') + '[nodes.bye]\nkind = "hangup"\n'
    flow = flow_of(nodes)
    validate_flow(flow, ("support",))
    step = start(flow, CallInfo(ref="u-5"), NOW)
    step = feed(flow, step.session, NoInput(), NOW)
    step = feed(flow, step.session, NoInput(), NOW)
    assert step.wait == Done("completed", "bye") and step.actions[-1] == Hangup()


def test_the_sample_payment_flow_pauses_takes_a_card_resumes_and_goes_back() -> None:
    flow = load_flow(ROOT / "flows" / "payment.toml")
    validate_flow(flow, ("support", "billing"))
    step = start(flow, CallInfo(ref="u-6", origin_queue="billing"), NOW)
    assert step.actions[-1] == PauseRecording() and step.session.node == "card"
    step = feed(flow, step.session, Digits(CARD + "#"), NOW)
    assert ResumeRecording() in step.actions and step.session.node == "after"
    step = feed(flow, step.session, Digits("1"), NOW)
    (enqueue,) = [a for a in step.actions if isinstance(a, Enqueue)]
    assert enqueue.task.queue == "billing" and not enqueue.survey
    assert step.session.path == ("pause", "card", "thanks", "resume", "after", "back")
    assert CARD not in step.session.to_json()
