"""The TwiML of each interpreter step (ivr.twilio.twiml), parsed back with
xml.etree, and the position a webhook URL carries: it changes with every
input fed, so a replayed webhook is always recognised."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr import (
    AwaitLookup,
    AwaitRecording,
    AwaitTransfer,
    CallInfo,
    Digits,
    Done,
    Enqueue,
    GatherDigits,
    Hangup,
    HungUp,
    Input,
    LookupResult,
    NoInput,
    RecordingDone,
    Say,
    SetLanguage,
    TaskRequest,
    TransferCompleted,
    TransferFailed,
    feed,
    load_flow,
    start,
)
from ivr.twilio import Links, position, say_language, twiml

SAMPLE = load_flow(Path(__file__).resolve().parents[2] / "flows" / "support.toml")
OPEN = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
LINKS = Links(flow="support", at="flow-3-1")


def render(*args: object) -> ET.Element:
    return ET.fromstring(str(twiml(*args).to_xml()))  # type: ignore[arg-type]


def action_of(element: ET.Element | None) -> dict[str, str]:
    assert element is not None
    url = element.get("action") or element.text or ""
    assert urlsplit(url).path == "/twilio/voice"
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def say(text: str, language: str = "en", locale: str = "en-GB", url: str | None = None) -> Say:
    return Say(text=text, language=language, locale=locale, url=url)


def test_gather_for_a_collect_node_keeps_its_finish_key_and_length() -> None:
    wait = GatherDigits((say("Type your account."),), max_digits=10, timeout=7.5, finish_on_key="#")
    doc = render([SetLanguage("en", "en-GB"), say("Hello.")], wait, LINKS)
    assert [v.tag for v in doc] == ["Say", "Gather", "Redirect"]
    gather = doc.find("Gather")
    assert gather is not None
    assert (gather.get("numDigits"), gather.get("timeout"), gather.get("finishOnKey")) == (
        "10",
        "8",
        "#",
    )
    assert gather.get("method") == "POST" and gather.get("input") == "dtmf"
    assert action_of(gather) == {"flow": "support", "on": "gather", "at": "flow-3-1"}
    # The fallback after a silent Gather feeds the same action (no Digits: a timeout).
    assert action_of(doc.find("Redirect")) == action_of(gather)


def test_prompts_with_an_audio_url_are_played_and_languages_map_to_twilio_codes() -> None:
    wait = GatherDigits(
        (
            say("Bonjour", "fr", "fr-FR"),
            say("Hallo", "de", "de-AT"),
            say("?", "tlh", "tlh-QO"),
            say("ignored", url="https://cdn.example.com/en/welcome.mp3"),
        ),
        max_digits=1,
        timeout=5,
        finish_on_key="",
    )
    gather = render([], wait, LINKS).find("Gather")
    assert gather is not None
    assert [(v.tag, v.text, v.get("language")) for v in gather] == [
        ("Say", "Bonjour", "fr-FR"),
        ("Say", "Hallo", "de-DE"),  # de-AT is not a Twilio <Say> language: de's default
        ("Say", "?", "en-US"),  # nothing known: Twilio's default
        ("Play", "https://cdn.example.com/en/welcome.mp3", None),
    ]
    assert gather.get("finishOnKey") == ""
    assert say_language(say("x", "en", "en-AU")) == "en-AU"


def test_record_dial_enqueue_and_hangup() -> None:
    record = render([], AwaitRecording((say("After the tone."),), 120, "#"), LINKS)
    assert [v.tag for v in record] == ["Say", "Record", "Redirect"]
    element = record.find("Record")
    assert element is not None
    assert element.get("maxLength") == "120" and element.get("playBeep") == "true"
    assert element.get("recordingStatusCallback") == "/twilio/recording-status"
    assert action_of(element)["on"] == "record"
    assert action_of(record.find("Redirect"))["on"] == "norecord"

    dial = render([say("Transferring.")], AwaitTransfer("+15555550100", 30), LINKS)
    number = dial.find("Dial/Number")
    assert number is not None and number.text == "+15555550100"
    assert action_of(dial.find("Dial"))["on"] == "dial"

    task = TaskRequest("billing", 10, "en", {"billing": 1}, "7", {"intent": "billing"})
    queued = render([say("Thanks."), Enqueue(task, survey=True)], Done("queued", "q"), LINKS)
    assert [v.tag for v in queued] == ["Say", "Enqueue"]
    enqueue = queued.find("Enqueue")
    assert enqueue is not None and enqueue.text == "billing"
    assert enqueue.get("waitUrl") == "/twilio/wait"
    assert action_of(enqueue)["on"] == "queue"

    bye = render([say("Goodbye."), Hangup()], Done("completed", "bye"), LINKS)
    assert [v.tag for v in bye] == ["Say", "Hangup"]


def test_a_lookup_is_never_rendered() -> None:
    with pytest.raises(ValueError, match="AwaitLookup"):
        twiml([], AwaitLookup("caller_id", "+331"), LINKS)


def _answer(wait: object, draw: st.DrawFn) -> Input:
    if isinstance(wait, GatherDigits):
        return draw(
            st.one_of(
                st.builds(Digits, st.text(alphabet="0123456789*#x", max_size=12)),
                st.just(NoInput()),
            )
        )
    if isinstance(wait, AwaitLookup):
        return draw(st.sampled_from([LookupResult(None), LookupResult({"id": 3, "vip": True})]))
    if isinstance(wait, AwaitRecording):
        return draw(st.sampled_from([RecordingDone("u", 4.0), RecordingDone("", 0.0)]))
    if isinstance(wait, AwaitTransfer):
        return draw(st.sampled_from([TransferCompleted(), TransferFailed("busy")]))
    raise AssertionError(wait)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_every_input_fed_moves_the_position(data: st.DataObject) -> None:
    step = start(SAMPLE, CallInfo("+33612345678", "5000", "CA1"), OPEN)
    seen = {position(step.session)}
    for _ in range(80):
        if step.done:
            break
        event = HungUp() if data.draw(st.integers(0, 30)) == 0 else _answer(step.wait, data.draw)
        step = feed(SAMPLE, step.session, event, OPEN)
        now = position(step.session)
        if not step.done:
            assert now not in seen, f"position {now} seen before"
        seen.add(now)
    assert step.done
