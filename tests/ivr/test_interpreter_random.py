"""Random callers: whatever keys, silences, hang-ups, lookup results, recordings
and transfer results arrive, the interpreter never raises and every call ends
in a terminal outcome within a bounded number of inputs."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from ivr import (
    AwaitLookup,
    AwaitRecording,
    AwaitTransfer,
    CallInfo,
    Digits,
    Done,
    Enqueue,
    Flow,
    GatherDigits,
    HungUp,
    Input,
    LookupResult,
    NoInput,
    RecordingDone,
    Session,
    Step,
    TransferCompleted,
    TransferFailed,
    feed,
    load_flow,
    parse_flow,
    start,
    start_survey,
    validate_flow,
)
from ivr.model import OUTCOMES, CollectNode, MenuNode, SurveyNode

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = load_flow(ROOT / "flows" / "support.toml")
LOOPY = parse_flow(
    tomllib.loads(
        """
[flow]
name = "loopy"
start = "top"
language = "en"
timezone = "America/New_York"
survey = "rate"
max_steps = 25

[nodes.top]
kind = "say"
prompt = "Main menu."
next = "menu"

[nodes.menu]
kind = "menu"
prompt = "1 repeat, 2 account, 3 queue, 4 transfer, 5 voicemail, 6 callback."
choices = { 1 = "top", 2 = "acct", 3 = "q", 4 = "xfer", 5 = "vm", 6 = "cb" }
retries = 3
failure = "q"

[nodes.acct]
kind = "collect"
prompt = "Account."
var = "acct"
min_digits = 2
max_digits = 4
next = "look"
failure = "menu"

[nodes.look]
kind = "lookup"
by = "account_number"
var = "acct"
copy = ["vip"]
found = "vip"
not_found = "top"

[nodes.vip]
kind = "branch"
cases = [{ when = "task.attributes.vip == true", next = "first" }]
otherwise = "q"

[nodes.first]
kind = "set"
priority = 9
next = "q"

[nodes.q]
kind = "queue"
queue = "support"

[nodes.xfer]
kind = "transfer"
number = "+15555550100"
failure = "top"

[nodes.vm]
kind = "voicemail"
queue = "support"
prompt = "Speak."

[nodes.cb]
kind = "callback"
queue = "support"
no_number = "menu"

[nodes.rate]
kind = "survey"
prompt = "Rate."
next = "bye"
failure = "bye"

[nodes.bye]
kind = "hangup"
"""
    )
)
validate_flow(LOOPY, ["support", "billing"])

# Mostly one key (so callers get deep into the flows), sometimes garbage.
KEYS = st.one_of(
    st.sampled_from(list("0123456789*#")),
    st.text(alphabet="0123456789*# a\u0661\n", max_size=12),
)
CUSTOMERS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"id": st.integers(1, 10**6) | st.text("abc123", min_size=1, max_size=5)},
        optional={
            "vip": st.booleans() | st.integers() | st.text(max_size=3),
            "name": st.text(max_size=20),
            "nested": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        },
    ),
)
MOMENTS = st.one_of(
    st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    # Monday 1 to Friday 5 June 2026, 09:00-19:00 in Paris: mostly open
    st.builds(
        lambda day, minute: (
            datetime(2026, 6, 1, 7, tzinfo=UTC) + timedelta(days=day, minutes=minute)
        ),
        st.integers(0, 4),
        st.integers(0, 599),
    ),
)
CALLS = st.builds(
    CallInfo,
    caller_id=st.sampled_from(["", "anonymous", "+33612345678", "5551234", "12"]),
    dialed=st.text("0123456789+", max_size=12),
    ref=st.text(max_size=10),
)


def next_input(data: st.DataObject, step: Step) -> Input:
    """Something the wait accepts (a hang-up is always possible)."""
    wait = step.wait
    if isinstance(wait, GatherDigits):
        choice = st.one_of(st.builds(Digits, KEYS), st.just(NoInput()))
    elif isinstance(wait, AwaitLookup):
        choice = st.builds(LookupResult, CUSTOMERS)
    elif isinstance(wait, AwaitRecording):
        choice = st.builds(
            RecordingDone,
            st.sampled_from(["", "vm.wav"]),
            st.floats(allow_nan=True, min_value=None, max_value=None),
            st.booleans(),
        )
    else:
        assert isinstance(wait, AwaitTransfer)
        choice = st.one_of(
            st.builds(TransferFailed, st.text(max_size=8)), st.just(TransferCompleted())
        )
    hang_up: Input | None = data.draw(st.sampled_from([None] * 19 + [HungUp()]))
    return hang_up if hang_up is not None else data.draw(choice)


def bound(flow: Flow) -> int:
    """Inputs a session can take: each node visit waits at most retries + 1 times."""
    most = max(
        (
            n.retries
            for n in flow.nodes.values()
            if isinstance(n, MenuNode | CollectNode | SurveyNode)
        ),
        default=0,
    )
    return flow.max_steps * (most + 1)


def drive(data: st.DataObject, flow: Flow, step: Step, now: datetime) -> tuple[Step, int]:
    inputs = 0
    last: Input | None = None
    while not step.done:
        assert inputs <= bound(flow), "no terminal outcome within the bound"
        last = next_input(data, step)
        session = Session.from_json(step.session.to_json())
        assert session == step.session
        step = feed(flow, session, last, now)
        inputs += 1
    assert isinstance(step.wait, Done)
    assert step.wait.outcome in OUTCOMES and step.wait.node in flow.nodes
    assert step.session.outcome == step.wait.outcome
    abandoned = step.wait.outcome == "abandoned"
    if isinstance(last, HungUp):
        assert abandoned
    if abandoned:
        assert isinstance(last, HungUp) or (isinstance(last, RecordingDone) and last.hung_up)
    assert len(step.session.path) <= flow.max_steps
    event(f"{flow.name}: {step.wait.outcome} at {step.wait.node}")
    return step, inputs


@settings(max_examples=300, deadline=None)
@given(data=st.data(), moment=MOMENTS, call=CALLS, which=st.sampled_from([SAMPLE, LOOPY]))
def test_random_callers_never_raise_and_always_end(
    data: st.DataObject, moment: datetime, call: CallInfo, which: Flow
) -> None:
    step, _ = drive(data, which, start(which, call, moment), moment)

    enqueue = [a for a in step.actions if isinstance(a, Enqueue)]
    if enqueue and enqueue[0].survey:
        survey, _ = drive(data, which, start_survey(which, step.session, moment), moment)
        assert survey.session.phase == "survey"
