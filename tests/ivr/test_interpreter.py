"""The pure interpreter, node kind by node kind, with scripted inputs.

Every flow here is TOML parsed and validated as at start; every step's session
goes through JSON before the next input, as the Twilio adapter carries it.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime

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
    SessionError,
    SetLanguage,
    Step,
    SurveyScore,
    TransferCompleted,
    TransferFailed,
    Voicemail,
    feed,
    parse_flow,
    start,
    start_survey,
    validate_flow,
)

NOW = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # a Wednesday
CALL = CallInfo(caller_id="+33612345678", dialed="3000", ref="PJSIP/trunk-00000001")
QUEUES = ("support", "billing")


def make_flow(nodes: str, *, start_node: str = "s", head: str = "") -> Flow:
    text = (
        f'[flow]\nname = "t"\nstart = "{start_node}"\nlanguage = "en"\n'
        f'timezone = "Europe/Paris"\n{head}\n{nodes}'
    )
    flow = parse_flow(tomllib.loads(text))
    validate_flow(flow, QUEUES)
    return flow


def go(flow: Flow, step: Step, *inputs: Input) -> Step:
    """Feed ``inputs`` one by one, each time through the session's JSON."""
    for event in inputs:
        session = Session.from_json(step.session.to_json())
        assert session == step.session
        step = feed(flow, session, event, NOW)
    return step


def said(step: Step) -> list[str]:
    out = [a.text for a in step.actions if isinstance(a, Say)]
    if isinstance(step.wait, GatherDigits | AwaitRecording):
        out += [p.text for p in step.wait.prompts]
    return out


MENU = """
[nodes.s]
kind = "menu"
prompt = "Press 1 for sales, 2 for help."
choices = { 1 = "sales", 2 = { next = "help", value = "help_desk" } }
var = "choice"
retries = 2
timeout = 4
invalid = "Not a choice."
no_input = "I heard nothing."
failure = "fallback"

[nodes.sales]
kind = "hangup"
prompt = "Sales."

[nodes.help]
kind = "hangup"
prompt = "Help."

[nodes.fallback]
kind = "queue"
queue = "support"
"""


def test_start_sets_the_language_and_asks_the_menu() -> None:
    step = start(make_flow(MENU), CALL, NOW)

    assert step.actions == (SetLanguage("en", "en"),)
    assert step.wait == GatherDigits(
        prompts=(Say("Press 1 for sales, 2 for help.", "en", "en"),),
        max_digits=1,
        timeout=4.0,
        finish_on_key="",
    )
    assert step.session.node == "s" and step.session.path == ("s",)
    assert step.session.started_at == "2026-06-03T10:00:00+00:00"


def test_a_menu_choice_goes_to_its_node_and_records_its_value() -> None:
    flow = make_flow(MENU)

    one = go(flow, start(flow, CALL, NOW), Digits("1"))
    two = go(flow, start(flow, CALL, NOW), Digits("2"))

    assert one.wait == Done("completed", "sales") and said(one) == ["Sales."]
    assert one.actions[-1] == Hangup()
    assert one.session.attributes == {"choice": "1"}
    assert two.session.attributes == {"choice": "help_desk"}


@pytest.mark.parametrize("garbage", ["7", "12", "*", "#", "a", "1 2", "\u0661", "x" * 500])
def test_garbage_keys_replay_the_invalid_prompt_then_the_menu(garbage: str) -> None:
    flow = make_flow(MENU)

    step = go(flow, start(flow, CALL, NOW), Digits(garbage))

    assert step.actions == ()
    assert said(step) == ["Not a choice.", "Press 1 for sales, 2 for help."]
    assert step.session.attempt == 1 and step.session.node == "s"


def test_timeouts_replay_the_no_input_prompt_and_empty_digits_are_a_timeout() -> None:
    flow = make_flow(MENU)

    for event in (NoInput(), Digits(""), Digits("  ")):
        step = go(flow, start(flow, CALL, NOW), event)
        assert said(step) == ["I heard nothing.", "Press 1 for sales, 2 for help."]


def test_after_the_retries_a_miss_takes_the_failure_branch() -> None:
    flow = make_flow(MENU)
    step = go(flow, start(flow, CALL, NOW), Digits("9"), NoInput())
    assert step.session.attempt == 2 and isinstance(step.wait, GatherDigits)

    step = go(flow, step, Digits("9"))

    assert said(step) == ["Not a choice."]
    assert isinstance(step.actions[-1], Enqueue)
    assert step.wait == Done("queued", "fallback")
    assert step.session.path == ("s", "fallback")


def test_a_good_key_after_misses_is_taken() -> None:
    flow = make_flow(MENU)
    step = go(flow, start(flow, CALL, NOW), NoInput(), Digits("5"), Digits("2"))
    assert step.wait == Done("completed", "help")


COLLECT = """
[nodes.s]
kind = "collect"
prompt = "Your account number, then hash."
var = "account"
min_digits = 6
max_digits = 8
retries = 1
invalid = "That is not an account number."
next = "thanks"
failure = "sorry"

[nodes.thanks]
kind = "queue"
queue = "support"

[nodes.sorry]
kind = "hangup"
prompt = "Sorry."
"""


def test_collect_gathers_with_its_limits_and_stores_the_digits() -> None:
    flow = make_flow(COLLECT)
    first = start(flow, CALL, NOW)
    assert isinstance(first.wait, GatherDigits)
    assert (first.wait.min_digits, first.wait.max_digits, first.wait.finish_on_key) == (6, 8, "#")

    step = go(flow, first, Digits("123456#"))

    assert step.wait == Done("queued", "thanks")
    enqueue = step.actions[-1]
    assert isinstance(enqueue, Enqueue)
    assert enqueue.task.attributes["account"] == "123456"


@pytest.mark.parametrize("bad", ["12345", "123456789", "12a456", "1234*6", "\u0661\u0662\u0663456"])
def test_collect_refuses_wrong_lengths_and_non_digits(bad: str) -> None:
    flow = make_flow(COLLECT)

    step = go(flow, start(flow, CALL, NOW), Digits(bad))
    assert said(step) == ["That is not an account number.", "Your account number, then hash."]

    step = go(flow, step, Digits(bad))
    assert step.wait == Done("completed", "sorry") and said(step)[-1] == "Sorry."
    assert "account" not in step.session.attributes


DATE = """
[nodes.s]
kind = "collect"
prompt = "Your date of birth, day month year."
var = "dob"
format = "date"
date_order = "{order}"
retries = 0
next = "ok"
failure = "no"

[nodes.ok]
kind = "hangup"

[nodes.no]
kind = "hangup"
"""


@pytest.mark.parametrize(
    ("order", "keys", "stored"),
    [
        ("DMY", "29021988", "1988-02-29"),
        ("MDY", "02291988", "1988-02-29"),
        ("YMD", "19880229", "1988-02-29"),
        ("DMY", "03062026", "2026-06-03"),  # today, in the flow's time zone
        ("DMY", "29021989", None),  # not a leap year
        ("DMY", "31041990", None),
        ("DMY", "00011990", None),
        ("DMY", "04062026", None),  # tomorrow
        ("DMY", "01011890", None),  # more than 130 years ago
        ("DMY", "0101199", None),
    ],
)
def test_a_date_of_birth_must_be_a_real_past_date(
    order: str, keys: str, stored: str | None
) -> None:
    flow = make_flow(DATE.replace("{order}", order))

    step = go(flow, start(flow, CALL, NOW), Digits(keys))

    if stored is None:
        assert step.wait == Done("completed", "no")
        assert "dob" not in step.session.attributes
    else:
        assert step.wait == Done("completed", "ok")
        assert step.session.attributes["dob"] == stored


LOOKUP = """
[nodes.s]
kind = "lookup"
by = "caller_id"
copy = ["vip", "tier"]
found = "vip"
not_found = "account"

[nodes.account]
kind = "collect"
prompt = "Account?"
var = "account"
next = "by_account"
failure = "q"

[nodes.by_account]
kind = "lookup"
by = "account_number"
var = "account"
copy = ["vip"]
found = "vip"
not_found = "q"

[nodes.vip]
kind = "branch"
cases = [{ when = "task.attributes.vip", next = "first" }]
otherwise = "q"

[nodes.first]
kind = "set"
priority = 10
skills = { senior = 5 }
attributes = { segment = "vip" }
next = "q"

[nodes.q]
kind = "queue"
queue = "billing"
attributes = { line = "main" }
"""


def task_of(step: Step) -> Enqueue:
    enqueue = [a for a in step.actions if isinstance(a, Enqueue)]
    assert len(enqueue) == 1
    return enqueue[0]


def test_a_vip_found_by_caller_id_goes_first_with_its_customer_on_the_task() -> None:
    flow = make_flow(LOOKUP)
    first = start(flow, CALL, NOW)
    assert first.wait == AwaitLookup("caller_id", "+33612345678")

    customer = {"id": 42, "name": "Ada", "vip": True, "tier": "gold", "notes": {"x": 1}}
    step = go(flow, first, LookupResult(customer))

    task = task_of(step).task
    assert task.queue == "billing" and task.priority == 10
    assert task.customer_id == "42" and task.skills == {"senior": 5}
    assert task.attributes == {
        "vip": True,
        "tier": "gold",
        "segment": "vip",
        "line": "main",
        "caller_id": "+33612345678",
        "dialed": "3000",
        "ivr_flow": "t",
    }
    assert step.session.customer == {"id": "42", "name": "Ada", "vip": True, "tier": "gold"}


def test_a_customer_who_is_not_vip_keeps_the_default_priority() -> None:
    flow = make_flow(LOOKUP)
    step = go(flow, start(flow, CALL, NOW), LookupResult({"id": "7", "vip": False}))
    task = task_of(step).task
    assert task.priority == 0 and task.customer_id == "7" and "segment" not in task.attributes


def test_an_unknown_caller_types_an_account_number_that_is_looked_up() -> None:
    flow = make_flow(LOOKUP)
    step = go(flow, start(flow, CALL, NOW), LookupResult(None))
    assert said(step) == ["Account?"]

    step = go(flow, step, Digits("998877#"))
    assert step.wait == AwaitLookup("account_number", "998877")

    step = go(flow, step, LookupResult({"id": 9, "vip": True}))
    task = task_of(step).task
    assert task.priority == 10 and task.customer_id == "9"
    assert task.attributes["account"] == "998877"


@pytest.mark.parametrize("caller_id", ["", "anonymous", "Restricted", "12"])
def test_without_a_usable_caller_id_there_is_no_lookup(caller_id: str) -> None:
    flow = make_flow(LOOKUP)
    step = start(flow, CallInfo(caller_id=caller_id), NOW)
    assert isinstance(step.wait, GatherDigits) and said(step) == ["Account?"]
    step = go(flow, step, NoInput(), NoInput(), NoInput())
    task = task_of(step).task
    assert task.customer_id is None
    assert task.attributes.get("caller_id") == (caller_id or None)


def test_a_lookup_result_without_an_id_is_an_adapter_error() -> None:
    flow = make_flow(LOOKUP)
    step = start(flow, CALL, NOW)
    with pytest.raises(SessionError, match=r"flow t, node s: LookupResult.customer must be"):
        feed(flow, step.session, LookupResult({"name": "no id"}), NOW)


LANGUAGES = """
[nodes.s]
kind = "menu"
prompt = { en = "English 1, French 2.", fr = "Anglais 1, français 2." }
choices = { 1 = "q", 2 = "fr" }
failure = "q"

[nodes.fr]
kind = "set"
language = "fr"
next = "hi"

[nodes.hi]
kind = "say"
prompt.en = "Hello."
prompt.fr = "Bonjour."
prompt.sound = "cw/hello"
prompt.url = "https://x.example/{language}/hello.mp3"
next = "q"

[nodes.q]
kind = "queue"
queue = "support"
"""


def test_setting_the_language_changes_the_prompts_and_the_task() -> None:
    flow = make_flow(LANGUAGES, head='languages = { en = "en-US", fr = "fr-CA" }')

    step = go(flow, start(flow, CALL, NOW), Digits("2"))

    assert step.actions[0] == SetLanguage("fr", "fr-CA")
    assert step.actions[1] == Say(
        "Bonjour.", "fr", "fr-CA", sound="cw/hello", url="https://x.example/fr/hello.mp3"
    )
    assert task_of(step).task.language == "fr"
    assert step.session.language == "fr"


@pytest.mark.parametrize(
    ("earlier", "language", "locale", "prompt"),
    [
        ("fr", "fr", "fr-CA", "Anglais 1, français 2."),
        ("de", "en", "en-US", "English 1, French 2."),  # a language the flow lacks
        ("", "en", "en-US", "English 1, French 2."),  # a call new to the IVR
    ],
)
def test_a_caller_keeps_the_language_chosen_earlier_on_the_call_if_the_flow_has_it(
    earlier: str, language: str, locale: str, prompt: str
) -> None:
    flow = make_flow(LANGUAGES, head='languages = { en = "en-US", fr = "fr-CA" }')
    call = CallInfo(caller_id=CALL.caller_id, dialed=CALL.dialed, ref=CALL.ref, language=earlier)

    step = start(flow, call, NOW)

    assert step.actions == (SetLanguage(language, locale),)
    assert isinstance(step.wait, GatherDigits) and step.wait.prompts[0].text == prompt
    assert step.session.language == language


def test_the_survey_flag_follows_the_flow_and_the_node() -> None:
    nodes = """
[nodes.s]
kind = "queue"
queue = "support"
[nodes.rate]
kind = "survey"
prompt = "Rate us."
next = "bye"
failure = "bye"
[nodes.bye]
kind = "hangup"
"""
    with_survey = make_flow(nodes, head='survey = "rate"')
    without = make_flow(nodes.split("[nodes.rate]")[0])
    opted_out = make_flow(
        nodes.replace('queue = "support"', 'queue = "support"\nsurvey = false'),
        head='survey = "rate"',
    )

    assert task_of(start(with_survey, CALL, NOW)).survey is True
    assert task_of(start(without, CALL, NOW)).survey is False
    assert task_of(start(opted_out, CALL, NOW)).survey is False


SURVEY = """
[nodes.s]
kind = "queue"
queue = "support"

[nodes.rate]
kind = "survey"
prompt = "From 1 to 5?"
invalid = "1 to 5 please."
retries = 1
next = "thanks"
failure = "bye"

[nodes.thanks]
kind = "hangup"
prompt = "Thanks."

[nodes.bye]
kind = "hangup"
"""


def test_the_post_call_survey_scores_one_key_from_one_to_five() -> None:
    flow = make_flow(SURVEY, head='survey = "rate"')
    queued = start(flow, CALL, NOW)
    assert queued.wait == Done("queued", "s")

    survey = start_survey(flow, queued.session, NOW)
    assert survey.session.phase == "survey" and survey.session.path == ("rate",)
    assert said(survey) == ["From 1 to 5?"]

    step = go(flow, survey, Digits("6"))
    assert said(step) == ["1 to 5 please.", "From 1 to 5?"]
    step = go(flow, step, Digits("4"))

    assert step.actions[0] == SurveyScore(4, 5)
    assert step.wait == Done("completed", "thanks")
    assert step.session.attributes["survey_score"] == 4


@pytest.mark.parametrize("keys", ["0", "6", "9", "45", "*", "#", "a"])
def test_survey_keys_outside_the_scale_never_score(keys: str) -> None:
    flow = make_flow(SURVEY, head='survey = "rate"')
    survey = start_survey(flow, CALL, NOW)

    step = go(flow, survey, Digits(keys), Digits(keys))

    assert not any(isinstance(a, SurveyScore) for a in step.actions)
    assert step.wait == Done("completed", "bye")


def test_a_survey_needs_a_flow_with_a_survey_and_a_queued_session() -> None:
    flow = make_flow(SURVEY, head='survey = "rate"')
    plain = make_flow(SURVEY.split("[nodes.rate]")[0])
    queued = start(flow, CALL, NOW)
    survey = start_survey(flow, queued.session, NOW)

    with pytest.raises(SessionError, match="flow t: has no survey"):
        start_survey(plain, queued.session, NOW)
    with pytest.raises(SessionError, match="a survey follows a session that ended queued"):
        start_survey(flow, survey.session, NOW)


VOICEMAIL = """
[nodes.s]
kind = "voicemail"
queue = "support"
prompt = "Leave a message."
max_seconds = 60
goodbye = "Bye."
"""


def test_a_voicemail_becomes_a_task_with_the_recording_and_the_number() -> None:
    flow = make_flow(VOICEMAIL)
    first = start(flow, CALL, NOW)
    assert first.wait == AwaitRecording(
        prompts=(Say("Leave a message.", "en", "en"),), max_seconds=60, finish_on_key="#"
    )

    step = go(flow, first, RecordingDone("vm-1.wav", 12.5))

    voicemail = step.actions[0]
    assert isinstance(voicemail, Voicemail)
    assert (voicemail.recording, voicemail.seconds, voicemail.number) == (
        "vm-1.wav",
        12.5,
        "+33612345678",
    )
    assert voicemail.task.queue == "support"
    assert said(step) == ["Bye."] and step.actions[-1] == Hangup()
    assert step.wait == Done("voicemail", "s")


def test_a_voicemail_ended_by_hanging_up_is_kept_without_a_goodbye() -> None:
    flow = make_flow(VOICEMAIL)
    step = go(flow, start(flow, CALL, NOW), RecordingDone("vm-2.wav", 30, hung_up=True))
    assert isinstance(step.actions[0], Voicemail) and len(step.actions) == 1
    assert step.wait == Done("voicemail", "s")


def test_an_empty_recording_makes_no_task() -> None:
    flow = make_flow(VOICEMAIL)
    silent = go(flow, start(flow, CALL, NOW), RecordingDone("vm-3.wav", 0.4))
    gone = go(flow, start(flow, CALL, NOW), RecordingDone("", 0, hung_up=True))
    hung = go(flow, start(flow, CALL, NOW), HungUp())

    assert silent.actions == (Hangup(),) and silent.wait.outcome == "completed"  # type: ignore[union-attr]
    assert gone.actions == () and gone.wait == Done("abandoned", "s")
    assert hung.wait == Done("abandoned", "s")


CALLBACK = """
[nodes.s]
kind = "callback"
queue = "support"
prompt = "We will call you."
no_number = "ask"

[nodes.ask]
kind = "collect"
prompt = "Your number?"
var = "number"
min_digits = 6
max_digits = 15
next = "typed"
failure = "bye"

[nodes.typed]
kind = "callback"
queue = "billing"
number_var = "number"

[nodes.bye]
kind = "hangup"
"""


def test_a_callback_is_requested_for_the_caller_id() -> None:
    flow = make_flow(CALLBACK)
    step = start(flow, CALL, NOW)
    callback = step.actions[1]
    assert isinstance(callback, Callback)
    assert callback.number == "+33612345678" and callback.task.queue == "support"
    assert said(step) == ["We will call you."] and step.actions[-1] == Hangup()
    assert step.wait == Done("callback", "s")


def test_without_a_caller_id_the_caller_types_the_number_to_call() -> None:
    flow = make_flow(CALLBACK)
    step = start(flow, CallInfo(caller_id="anonymous"), NOW)
    assert said(step) == ["Your number?"]

    step = go(flow, step, Digits("0612345678#"))

    callback = step.actions[0]
    assert isinstance(callback, Callback) and callback.number == "0612345678"
    assert callback.task.queue == "billing"
    assert step.wait == Done("callback", "typed")


def test_a_callback_without_any_number_fails_and_hangs_up() -> None:
    flow = make_flow('[nodes.s]\nkind = "callback"\nqueue = "support"\n')
    step = start(flow, CallInfo(), NOW)
    assert step.actions[-1] == Hangup()
    assert step.wait == Done("failed", "s", "no number to call back")


TRANSFER = """
[nodes.s]
kind = "transfer"
number = "+15555550100"
timeout = 20
prompt = "Transferring."
failure = "q"

[nodes.q]
kind = "queue"
queue = "support"
"""


def test_a_transfer_dials_and_ends_transferred() -> None:
    flow = make_flow(TRANSFER)
    first = start(flow, CALL, NOW)
    assert first.wait == AwaitTransfer("+15555550100", 20) and said(first) == ["Transferring."]

    step = go(flow, first, TransferCompleted())

    assert step.actions == (Hangup(),) and step.wait == Done("transferred", "s")


def test_a_failed_transfer_takes_the_failure_branch_or_fails() -> None:
    flow = make_flow(TRANSFER)
    bare = make_flow('[nodes.s]\nkind = "transfer"\nnumber = "5551234"\n')

    step = go(flow, start(flow, CALL, NOW), TransferFailed("BUSY"))
    assert step.wait == Done("queued", "q")

    step = feed(bare, start(bare, CALL, NOW).session, TransferFailed("NOANSWER"), NOW)
    assert step.wait == Done("failed", "s", "the transfer to 5551234 failed (NOANSWER)")
    assert step.actions == (Hangup(),)


@pytest.mark.parametrize(
    ("flow_text", "inputs", "node"),
    [
        (MENU, [Digits("9")], "s"),
        (COLLECT, [], "s"),
        (LOOKUP, [], "s"),
        (LOOKUP, [LookupResult(None), NoInput()], "account"),
        (TRANSFER, [], "s"),
    ],
)
def test_a_caller_hanging_up_mid_flow_is_abandoned_where_it_happened(
    flow_text: str, inputs: list[Input], node: str
) -> None:
    flow = make_flow(flow_text)
    step = go(flow, start(flow, CALL, NOW), *inputs)

    step = go(flow, step, HungUp())

    assert step.wait == Done("abandoned", node)
    assert step.actions == ()
    assert step.session.outcome == "abandoned" and step.session.node == node


def test_adapter_mistakes_raise_session_errors_and_change_nothing() -> None:
    flow = make_flow(MENU)
    other = make_flow(MENU.replace("[nodes.s]", "[nodes.s]"), head="max_steps = 50")
    step = start(flow, CALL, NOW)
    before = step.session.to_json()

    with pytest.raises(SessionError, match=r"flow t, node s: a menu node waits for Digits"):
        feed(flow, step.session, LookupResult(None), NOW)
    with pytest.raises(SessionError, match=r"flow t, node s: a menu node waits for Digits"):
        feed(flow, step.session, Digits(5), NOW)  # type: ignore[arg-type]
    done = go(flow, step, Digits("1"))
    with pytest.raises(SessionError, match=r"the session already ended \(completed\)"):
        feed(flow, done.session, Digits("1"), NOW)
    moved = Session.from_dict({**step.session.to_dict(), "node": "gone"})
    with pytest.raises(SessionError, match="at node 'gone', which the flow does not have"):
        feed(other, moved, Digits("1"), NOW)
    foreign = Session.from_dict({**step.session.to_dict(), "flow": "x"})
    with pytest.raises(SessionError, match="belongs to flow 'x'"):
        feed(flow, foreign, Digits("1"), NOW)

    assert step.session.to_json() == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "session: not valid JSON"),
        ("[]", "session: expected a JSON object"),
        ('{"flow": "t", "node": "s", "language": "en", "attempt": -1}', "attempt"),
        ('{"flow": "t", "node": "s", "language": "en", "path": [1]}', "path"),
        ('{"flow": "t", "node": "s", "language": "en", "attributes": {"a": []}}', "attributes"),
        ('{"flow": "t", "node": "s", "language": "en", "outcome": "won"}', "outcome"),
        ('{"flow": "t", "node": "s", "language": "en", "hacked": 1}', "unknown field 'hacked'"),
        ('{"node": "s", "language": "en"}', "session: flow: expected a string"),
    ],
)
def test_a_damaged_session_is_refused_with_the_field_named(text: str, message: str) -> None:
    with pytest.raises(SessionError, match=message):
        Session.from_json(text)


def test_a_caller_looping_through_a_menu_is_stopped_at_max_steps() -> None:
    flow = make_flow(
        """
[nodes.s]
kind = "say"
prompt = "Main menu."
next = "m"

[nodes.m]
kind = "menu"
prompt = "1 to hear this again, 2 to leave."
choices = { 1 = "s", 2 = "bye" }
failure = "bye"

[nodes.bye]
kind = "hangup"
""",
        head="max_steps = 10",
    )
    step = start(flow, CALL, NOW)
    presses = 0
    while not step.done:
        step = go(flow, step, Digits("1"))
        presses += 1

    assert presses == 5  # s, m and 4 more rounds: 10 visits; the 5th press is one too many
    assert step.wait == Done("failed", "m", "the call went through 10 nodes (max_steps)")
    assert step.actions[-1] == Hangup()


def test_the_adapters_vocabulary_is_pinned() -> None:
    import ivr

    assert sorted(ivr.__all__) == sorted(
        [
            *("Action", "AwaitLookup", "AwaitRecording", "AwaitTransfer", "CallInfo"),
            *("Callback", "Digits", "Done", "Enqueue", "Flow", "FlowError", "GatherDigits"),
            *("Hangup", "HungUp", "Input", "IvrError", "LookupResult", "NoInput", "Outcome"),
            *("PauseRecording", "RecordingDone", "ResumeRecording"),
            *("Say", "Session", "SessionError", "SetLanguage", "Step"),
            *("SurveyScore", "TaskRequest", "TransferCompleted", "TransferFailed", "Voicemail"),
            *("Wait", "feed", "load_flow", "load_flows", "parse_flow", "problems", "render"),
            *("start", "start_survey", "usable_number", "validate_flow"),
        ]
    )
    assert all(hasattr(ivr, name) for name in ivr.__all__)
