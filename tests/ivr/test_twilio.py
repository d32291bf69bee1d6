"""The Twilio voice webhooks over real HTTP against the whole runtime (simulator
over AMI, SQLite): requests signed with twilio's own RequestValidator walk the
shipped support flow, the TwiML answers parsed with xml.etree; forged,
unsigned or mis-addressed requests get 403 and store nothing; hang-ups,
garbage keys, timeouts, missing fields, unknown flows and replays each get
their answer."""

from __future__ import annotations

import contextlib
import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from sqlalchemy import func, select, text

from agent_desk.audit import audit_events
from callwright.config import Secret, TwilioConfig, load_config
from callwright.runtime import Runtime
from cti.persistence import call_records
from ivr.persistence import ivr_sessions
from routing import model
from routing.model import TaskView
from sim.pbx.server import PbxSimulator
from sim.twilio import TwilioCaller, call_sid, find, sign, verbs
from tests.desk.conftest import fresh_postgres
from tests.integration.conftest import Recorder, make_config, offered_to, seed_agents

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "twilio-voice-test-token-0123456789"
OPEN = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # a Wednesday, 12:00 in Paris
CLOSED = datetime(2026, 6, 3, 20, 0, tzinfo=UTC)  # 22:00 in Paris
PUBLIC = "https://cc.example.com"
# English, technical support, an account number nobody has: the support queue.
SUPPORT = ["1", "2", "999999#"]


async def start_runtime(
    tmp_path: Path, twilio: TwilioConfig, now: datetime = OPEN, store_url: str = ""
) -> tuple[PbxSimulator, Runtime]:
    shipped = load_config(ROOT / "config.toml", env={})
    sim = PbxSimulator(answer_delay=0.02, login_failure_delay=0)
    await sim.start()
    config = replace(
        make_config(sim.port, tmp_path / "data", store_url),
        routing=shipped.routing,
        ivr=replace(shipped.ivr, agi_port=0),
        twilio=twilio,
    )
    runtime = Runtime(config)
    runtime.ivr.clock = lambda: now
    await runtime.start()
    return sim, runtime


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """The runtime on SQLite, then on a fresh PostgreSQL database."""
    async with contextlib.AsyncExitStack() as stack:
        url = ""
        if request.param == "postgresql":
            url = await stack.enter_async_context(fresh_postgres())
        sim, rt = await start_runtime(tmp_path, TwilioConfig(auth_token=Secret(TOKEN)), OPEN, url)
        try:
            yield rt
        finally:
            await rt.stop()
            await sim.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def caller(runtime: Runtime, **kw: Any) -> TwilioCaller:
    return TwilioCaller(runtime.url, TOKEN, flow="support", **kw)


async def count(runtime: Runtime, table: Any) -> int:
    async with runtime.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def session_row(runtime: Runtime, sid: str, phase: str = "flow") -> Any:
    row = await runtime.ivr_sessions.latest_for_call_ref(sid, phase=phase)
    assert row is not None, f"no {phase} session for {sid}"
    return row


def task(runtime: Runtime, task_id: str) -> TaskView:
    assert runtime.routing is not None
    return runtime.routing.router.task(task_id)


def state(runtime: Runtime, task_id: str) -> str:
    assert runtime.routing is not None
    return str(runtime.routing.router.task_state(task_id).value)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def post_signed(
    http: aiohttp.ClientSession,
    url: str,
    fields: dict[str, str],
    *,
    signed_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    signature = sign(TOKEN, signed_url or url, fields)
    async with http.post(
        url, data=fields, headers={"X-Twilio-Signature": signature, **(headers or {})}
    ) as resp:
        return resp.status, await resp.text()


# -- the flow through webhooks ----------------------------------------------------


async def test_first_webhook_answers_with_the_welcome_and_the_language_menu(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime, keys=[])
    reply = await call.post(http, call.first_url, call.params())
    assert reply.status == 200, reply.body
    assert reply.xml is not None
    assert verbs(reply.xml) == ["Say", "Gather", "Redirect"]
    welcome = find(reply.xml, "Say")
    assert welcome.text == "Welcome to Callwright support."
    assert welcome.get("language") == "en-GB"
    gather = find(reply.xml, "Gather")
    assert gather.get("input") == "dtmf"
    assert gather.get("numDigits") == "1"
    assert gather.get("timeout") == "5"
    assert gather.get("finishOnKey") == ""
    assert gather.get("actionOnEmptyResult") == "true"
    assert [(p.tag, p.text) for p in gather] == [("Say", "For English, press 1.")]
    action = query(gather.get("action", ""))
    assert action["flow"] == "support" and action["on"] == "gather"
    row = await session_row(runtime, call.sid)
    assert (row.edge, row.node, row.outcome) == ("twilio", "language", "in_progress")
    assert action["at"] == f"flow-{len(row.session.path)}-0"


async def test_unknown_caller_reaches_billing_with_everything_collected(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    customer = await runtime.customers.create(
        "Ann Vip", account_number="1234567", notes="Key account #VIP"
    )
    call = caller(runtime, caller="+33612345678", keys=["1", "1", "1234567#"])
    await call.run(http)
    assert call.queued == "billing"
    assert "Please type your account number, then the hash key." in call.said()
    assert "Thank you. A billing agent will be with you shortly." in call.said()
    enqueue = find(call.replies[-1].xml, "Enqueue")  # type: ignore[arg-type]
    assert enqueue.text == "billing"
    assert urlsplit(enqueue.get("waitUrl", "")).path == "/twilio/wait"
    assert query(enqueue.get("action", ""))["on"] == "queue"

    row = await session_row(runtime, call.sid)
    assert (row.outcome, row.queue) == ("queued", "billing")
    assert row.task_id is not None and row.interaction_id is not None
    view = task(runtime, row.task_id)
    assert (view.queue_id, view.channel, view.state.value) == ("billing", "voice", "waiting")
    assert view.priority == 10  # VIP
    assert view.language == "en"
    assert dict(view.required_skills) == {"billing": 1}
    assert view.customer_id == str(customer.id)
    attributes = dict(view.attributes)
    assert attributes["intent"] == "billing"
    assert attributes["account_number"] == "1234567"
    assert attributes["vip"] is True and attributes["segment"] == "vip"
    assert attributes["caller_id"] == "+33612345678"
    assert attributes["dialed"] == "+14155550199"
    assert attributes["ivr_flow"] == "support"
    assert attributes["caller_number"] == "+33612345678"
    assert attributes["ivr_session"] == row.id
    interaction = await runtime.interactions.get(row.interaction_id)
    assert interaction is not None
    assert (interaction.call_id, interaction.queue) == (call.sid, "billing")
    assert interaction.customer_id == customer.id


async def test_french_caller_hears_french_prompts(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime, keys=["2", "2", "999999#"])
    await call.run(http)
    assert call.queued == "support"
    languages = {text: language for text, language in call.heard}
    assert languages["Merci. Un technicien va vous répondre."] == "fr-FR"
    assert languages["Welcome to Callwright support."] == "en-GB"
    row = await session_row(runtime, call.sid)
    assert task(runtime, row.task_id).language == "fr"


async def test_garbage_keys_and_timeouts_reprompt_then_fail_over_to_the_operator(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime, keys=["1", "9", None, "77"])
    await call.run(http)
    said = call.said()
    assert said.count("Sorry, that is not one of the choices.") == 2  # "9", then "77"
    assert said.count("Sorry, I did not hear a choice.") == 1
    assert "Please hold for an operator." in said
    assert call.queued == "support"
    row = await session_row(runtime, call.sid)
    view = task(runtime, row.task_id)
    assert view.attributes["operator"] is True
    # The re-prompt after a bad key: the invalid prompt, then the menu, in a new Gather.
    second = call.replies[2].xml
    assert second is not None
    gather = find(second, "Gather")
    assert next(p.text for p in gather) == "Sorry, that is not one of the choices."
    assert query(gather.get("action", ""))["at"].endswith("-1")


async def test_hangup_mid_flow_is_abandoned_at_its_node(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime, keys=["1"])  # then silence: the caller hangs up at the main menu
    await call.run(http)
    assert call.ended and call.queued is None
    status = call.replies[-1]
    assert status.status == 200, status.body
    row = await session_row(runtime, call.sid)
    assert (row.outcome, row.abandoned_node) == ("abandoned", "main_menu")
    record = await runtime.call_records.get(call.sid)
    assert record is not None and record.state == "completed" and record.ended_at is not None
    assert await count(runtime, call_records) == 1


@pytest.mark.parametrize("status", ["busy", "no-answer", "canceled"])
async def test_any_end_of_the_call_in_the_ivr_is_abandoned_at_its_node(
    runtime: Runtime, http: aiohttp.ClientSession, status: str
) -> None:
    call = caller(runtime, keys=["1", "2"], status_path=None)  # waits at the account prompt
    await call.run(http)
    reply = await call.post(
        http, runtime.url + "/twilio/status", call.params(CallStatus=status, CallDuration="0")
    )
    assert reply.status == 200
    row = await session_row(runtime, call.sid)
    assert (row.outcome, row.abandoned_node) == ("abandoned", "account")
    record = await runtime.call_records.get(call.sid)
    assert record is not None and record.state == status and record.ended_at is not None


async def test_hanging_up_during_the_survey_abandons_the_survey_only(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime, keys=SUPPORT)  # no key left for the survey: the caller hangs up
    await call.run(http)
    await call.leave_queue(http, "bridged")
    assert call.ended
    survey = await session_row(runtime, call.sid, phase="survey")
    assert (survey.outcome, survey.abandoned_node, survey.survey_score) == (
        "abandoned",
        "survey",
        None,
    )
    assert (await session_row(runtime, call.sid)).outcome == "queued"


async def test_closed_line_takes_a_voicemail_as_a_callback_task(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    sim, runtime = await start_runtime(tmp_path, TwilioConfig(auth_token=Secret(TOKEN)), CLOSED)
    try:
        call = caller(runtime, keys=["1", "1"], recordings=[12])
        await call.run(http)
        record_doc = next(
            r.xml for r in call.replies if r.xml is not None and r.xml.find("Record") is not None
        )
        assert record_doc is not None
        record = find(record_doc, "Record")
        assert record.get("maxLength") == "120"
        assert record.get("finishOnKey") == "#"
        assert record.get("playBeep") == "true"
        assert record.get("recordingStatusCallback") == "/twilio/recording-status"
        assert query(record.get("action", ""))["on"] == "record"
        assert verbs(record_doc)[-2:] == ["Record", "Redirect"]
        assert "Thank you, we will get back to you. Goodbye." in call.said()
        assert call.ended
        row = await session_row(runtime, call.sid)
        assert row.outcome == "voicemail" and row.task_id is not None
        view = task(runtime, row.task_id)
        assert (view.channel, view.queue_id) == ("callback", "support")
        assert str(view.attributes["recording"]).endswith("/Recordings/RE" + "0" * 31 + "1")
        assert view.attributes["recording_seconds"] == 12
        assert view.attributes["callback_number"] == "+14155550100"
        interaction = await runtime.interactions.by_call_id(call.sid)
        assert interaction is not None and interaction.id == row.interaction_id
        # Twilio's recording callback, once the file is ready, lands on that interaction.
        recording_sid = "RE" + "0" * 31 + "1"
        fields = {
            "AccountSid": "AC" + "5" * 32,
            "CallSid": call.sid,
            "RecordingSid": recording_sid,
            "RecordingStatus": "completed",
            "RecordingDuration": "12",
        }
        status, body = await post_signed(http, runtime.url + "/twilio/recording-status", fields)
        assert status == 200, body
        stored = await runtime.recordings.find_by_external_id("twilio", recording_sid)
        assert stored is not None and stored.interaction_id == row.interaction_id
        assert stored.duration_ms == 12000
    finally:
        await runtime.stop()
        await sim.stop()


async def test_silent_voicemail_ends_the_call_without_a_task(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    sim, runtime = await start_runtime(tmp_path, TwilioConfig(auth_token=Secret(TOKEN)), CLOSED)
    try:
        call = caller(runtime, keys=["1", "1"], recordings=[0])
        await call.run(http)
        row = await session_row(runtime, call.sid)
        assert (row.outcome, row.task_id) == ("completed", None)
        assert call.replies[-2].xml is not None and "Hangup" in verbs(call.replies[-2].xml)
    finally:
        await runtime.stop()
        await sim.stop()


async def test_transfer_dials_the_partner_and_a_busy_partner_goes_to_support(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime, keys=["1", "3"], dial_status="busy")
    await call.run(http)
    dial_doc = next(
        r.xml for r in call.replies if r.xml is not None and r.xml.find("Dial") is not None
    )
    assert dial_doc is not None
    dial = find(dial_doc, "Dial")
    assert dial.get("timeout") == "30"
    assert [(n.tag, n.text) for n in dial] == [("Number", "+15555550100")]
    assert query(dial.get("action", ""))["on"] == "dial"
    assert "Our partner cannot answer right now." in call.said()
    assert call.queued == "support"

    done = caller(runtime, keys=["1", "3"], dial_status="completed")
    await done.run(http)
    row = await session_row(runtime, done.sid)
    assert row.outcome == "transferred"
    assert done.replies[-2].xml is not None and verbs(done.replies[-2].xml) == ["Hangup"]


async def test_after_the_agent_the_caller_rates_the_call(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime, keys=[*SUPPORT, "5"])
    await call.run(http)
    assert call.queued == "support"
    flow_row = await session_row(runtime, call.sid)
    await call.leave_queue(http, "bridged")
    assert "Please rate this call from 1, poor, to 5, excellent." in call.said()
    assert "Thank you for your feedback. Goodbye." in call.said()
    survey = await session_row(runtime, call.sid, phase="survey")
    assert (survey.outcome, survey.survey_score) == ("completed", 5)
    assert survey.origin_id == flow_row.id
    assert await runtime.ivr_sessions.survey_for_interaction(flow_row.interaction_id) == 5


async def test_the_queued_twilio_caller_is_offered_to_an_agent_with_the_pop(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    agents = await seed_agents(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'callwright.db'}")
    sim, runtime = await start_runtime(tmp_path, TwilioConfig(auth_token=Secret(TOKEN)))
    try:
        assert runtime.routing is not None
        recorder = Recorder()
        runtime.routing.subscribe(recorder)
        alice = agents["1001"]
        await runtime.routing.set_agent_state(alice, "available")
        customer = await runtime.customers.create("Bea Known", phones=["+14155550100"])
        call = caller(runtime, keys=["1", "2"])  # known by caller ID: no account asked
        await call.run(http)
        assert call.queued == "support"
        offer = await recorder.wait_for(offered_to(alice))
        assert isinstance(offer, model.ReservationOffered)
        row = await session_row(runtime, call.sid)
        assert offer.task_id == row.task_id
        pop = await runtime.desk.pops.for_task(task(runtime, offer.task_id))
        assert pop["call_id"] == call.sid and pop["interaction_id"] == row.interaction_id
        assert pop["customer"]["id"] == customer.id
        assert pop["ivr"]["data"]["intent"] == "support"
        # Alice takes it; when Twilio reports the bridged call over, her task ends
        # (wrap-up) and the caller, still there, is asked for the survey.
        await runtime.routing.accept(offer.reservation_id)
        assert state(runtime, offer.task_id) == "assigned"
        await call.leave_queue(http, "bridged")
        assert state(runtime, offer.task_id) == "wrapping"  # support: 10 s of wrap-up
        assert "Please rate this call from 1, poor, to 5, excellent." in call.said()
    finally:
        await runtime.stop()
        await sim.stop()


async def test_caller_hanging_up_in_the_queue_cancels_the_task(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime, keys=SUPPORT)
    await call.run(http)
    row = await session_row(runtime, call.sid)
    assert state(runtime, row.task_id) == "waiting"
    await call.leave_queue(http, "hangup")
    assert state(runtime, row.task_id) == "canceled"
    interaction = await runtime.interactions.get(row.interaction_id)
    assert interaction is not None and interaction.ended_at is not None


# -- signatures ---------------------------------------------------------------------


async def test_forged_unsigned_and_misaddressed_requests_get_403_and_store_nothing(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime)
    url = call.first_url
    fields = call.params()
    forged = sign("not-the-token", url, fields)
    async with http.post(url, data=fields, headers={"X-Twilio-Signature": forged}) as resp:
        assert resp.status == 403
    async with http.post(url, data=fields) as resp:
        assert resp.status == 403
    # Signed for another host (a replay against us of a request meant elsewhere).
    status, _ = await post_signed(
        http, url, fields, signed_url=url.replace("127.0.0.1", "evil.example")
    )
    assert status == 403
    # Signed, then a field changed.
    signature = sign(TOKEN, url, fields)
    tampered = {**fields, "From": "+15550000000"}
    async with http.post(url, data=tampered, headers={"X-Twilio-Signature": signature}) as resp:
        assert resp.status == 403
    status_url = runtime.url + "/twilio/status"
    async with http.post(status_url, data={**fields, "CallStatus": "completed"}) as resp:
        assert resp.status == 403
    assert await count(runtime, ivr_sessions) == 0
    assert await count(runtime, call_records) == 0
    async with runtime.engine.connect() as conn:
        refused = list(
            await conn.execute(
                select(audit_events.c.action, audit_events.c.outcome).where(
                    audit_events.c.action.like("twilio.%")
                )
            )
        )
    assert [tuple(r) for r in refused].count(("twilio.voice", "denied")) == 4
    assert ("twilio.status", "denied") in [tuple(r) for r in refused]


async def test_behind_a_proxy_the_public_url_is_rebuilt_when_trusted(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    sim, runtime = await start_runtime(
        tmp_path, TwilioConfig(auth_token=Secret(TOKEN), trust_proxy=True)
    )
    try:
        call = caller(runtime, keys=SUPPORT, public_base=PUBLIC, forwarded=True)
        await call.run(http)
        assert call.queued == "support"
        assert all(r.url.startswith(PUBLIC) for r in call.replies)
        # The same request without the proxy's headers: the signature is for another URL.
        lost = caller(runtime, public_base=PUBLIC, forwarded=False)
        reply = await lost.post(http, lost.first_url, lost.params())
        assert reply.status == 403
        assert await runtime.ivr_sessions.latest_for_call_ref(lost.sid) is None
    finally:
        await runtime.stop()
        await sim.stop()


async def test_forwarded_headers_are_ignored_unless_the_proxy_is_trusted(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime, public_base=PUBLIC, forwarded=True)
    reply = await call.post(http, call.first_url, call.params())
    assert reply.status == 403
    assert await count(runtime, ivr_sessions) == 0


# -- bad input ----------------------------------------------------------------------


async def test_missing_fields_get_400_naming_them_and_change_nothing(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime)
    url = call.first_url
    for missing in ("CallSid", "From", "To"):
        fields = {k: v for k, v in call.params().items() if k != missing}
        status, body = await post_signed(http, url, fields)
        assert status == 400, body
        assert missing in body
    status, body = await post_signed(http, url, call.params(CallSid="CA-not-a-sid"))
    assert (status, "CallSid" in body) == (400, True)
    no_flow = runtime.url + "/twilio/voice"
    status, body = await post_signed(http, no_flow, call.params())
    assert (status, "flow" in body) == (400, True)
    assert await count(runtime, ivr_sessions) == 0

    # A started call: a record webhook without its recording, a bad position.
    reply = await call.post(http, url, call.params())
    assert reply.status == 200
    before = await session_row(runtime, call.sid)
    assert reply.xml is not None
    at = query(find(reply.xml, "Gather").get("action", ""))["at"]
    record = runtime.url + f"/twilio/voice?flow=support&on=record&at={at}"
    status, body = await post_signed(http, record, call.params(RecordingDuration="3"))
    assert (status, "RecordingUrl" in body) == (400, True)
    bad_at = runtime.url + "/twilio/voice?flow=support&on=gather&at=x"
    status, body = await post_signed(http, bad_at, call.params(Digits="1"))
    assert (status, "at" in body) == (400, True)
    status_url = runtime.url + "/twilio/status"
    status, body = await post_signed(http, status_url, call.params(CallStatus="exploded"))
    assert (status, "CallStatus" in body) == (400, True)
    status, body = await post_signed(http, status_url, {"CallStatus": "completed"})
    assert (status, "CallSid" in body) == (400, True)
    after = await session_row(runtime, call.sid)
    assert after.session == before.session and after.outcome == "in_progress"
    assert await count(runtime, call_records) == 0


async def test_unknown_flow_apologises_and_hangs_up(
    runtime: Runtime, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    call = TwilioCaller(runtime.url, TOKEN, flow="no-such-flow")
    with caplog.at_level(logging.ERROR, logger="ivr.twilio"):
        reply = await call.post(http, call.first_url, call.params())
    assert reply.status == 200 and reply.xml is not None
    assert verbs(reply.xml) == ["Say", "Hangup"]
    assert "not available" in (find(reply.xml, "Say").text or "")
    assert any("no-such-flow" in r.getMessage() for r in caplog.records)
    assert await count(runtime, ivr_sessions) == 0


async def test_a_store_failure_gets_an_apology_not_an_application_error(
    runtime: Runtime, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    async with runtime.engine.begin() as conn:
        await conn.execute(text("DROP TABLE ivr_sessions"))
    call = caller(runtime)
    with caplog.at_level(logging.ERROR, logger="ivr.twilio"):
        reply = await call.post(http, call.first_url, call.params())
    assert reply.status == 200 and reply.xml is not None
    assert verbs(reply.xml) == ["Say", "Hangup"]
    assert any("Twilio voice webhook failed" in r.getMessage() for r in caplog.records)


async def test_replayed_and_out_of_order_webhooks_change_nothing(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime, keys=SUPPORT)
    await call.run(http)
    row = await session_row(runtime, call.sid)
    assert row.outcome == "queued"
    assert runtime.routing is not None
    tasks_before = runtime.routing.router.task_ids()
    # Twilio's request answering the language menu, replayed as it was (signed).
    first = call.replies[0].xml
    assert first is not None
    action = find(first, "Gather").get("action", "")
    replayed = await call.post(http, runtime.url + action, call.params(Digits="2"))
    assert replayed.status == 200 and replayed.xml is not None
    # The call is queued: the replay gets the queue again, nothing is fed.
    assert verbs(replayed.xml) == ["Enqueue"]
    again = await call.post(http, call.first_url, call.params())
    assert again.xml is not None and verbs(again.xml) == ["Enqueue"]
    after = await session_row(runtime, call.sid)
    assert after.session == row.session and after.task_id == row.task_id
    assert runtime.routing.router.task_ids() == tasks_before


async def test_a_stale_gather_gets_the_current_menu(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime, keys=[])
    first = await call.post(http, call.first_url, call.params())
    action = find(first.xml, "Gather").get("action", "")  # type: ignore[arg-type]
    url = runtime.url + action
    fed = await call.post(http, url, call.params(Digits="1"))  # English: now at the main menu
    assert fed.xml is not None
    main = find(fed.xml, "Gather")
    row = await session_row(runtime, call.sid)
    assert row.node == "main_menu"
    stale = await call.post(http, url, call.params(Digits="2"))  # the old menu's action again
    assert stale.xml is not None
    assert [p.text for p in find(stale.xml, "Gather")] == [p.text for p in main][-1:]
    assert (await session_row(runtime, call.sid)).session == row.session


# -- status callbacks ---------------------------------------------------------------


async def test_status_callbacks_store_the_call_with_its_duration(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    sid = call_sid()
    url = runtime.url + "/twilio/status"
    base = {"CallSid": sid, "From": "+14155550100", "To": "+14155550199"}
    stamps = {
        "ringing": "Wed, 03 Jun 2026 10:00:00 +0000",
        "in-progress": "Wed, 03 Jun 2026 10:00:04 +0000",
        "completed": "Wed, 03 Jun 2026 10:01:50 +0000",
    }
    status, body = await post_signed(
        http, url, {**base, "CallStatus": "ringing", "Timestamp": stamps["ringing"]}
    )
    assert status == 200, body
    record = await runtime.call_records.get(sid)
    assert record is not None and record.state == "ringing" and record.answered_at is None
    status, _ = await post_signed(
        http, url, {**base, "CallStatus": "in-progress", "Timestamp": stamps["in-progress"]}
    )
    fields = {**base, "CallStatus": "completed", "CallDuration": "106"}
    status, _ = await post_signed(http, url, {**fields, "Timestamp": stamps["completed"]})
    assert status == 200
    # A late "ringing" (out of order) does not roll the call back.
    status, _ = await post_signed(
        http, url, {**base, "CallStatus": "ringing", "Timestamp": stamps["ringing"]}
    )
    assert status == 200
    record = await runtime.call_records.get(sid)
    assert record is not None
    assert record.state == "completed"
    assert record.started_at == datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    assert record.answered_at == datetime(2026, 6, 3, 10, 0, 4, tzinfo=UTC)
    assert record.ended_at is not None and record.answered_at is not None
    assert (record.ended_at - record.answered_at).total_seconds() == 106
    assert record.caller_num == "+14155550100"


async def test_status_completed_ends_the_interaction_of_a_queued_call(
    runtime: Runtime, http: aiohttp.ClientSession
) -> None:
    call = caller(runtime, keys=SUPPORT)
    await call.run(http)
    row = await session_row(runtime, call.sid)
    await call.hang_up(http)
    interaction = await runtime.interactions.get(row.interaction_id)
    assert interaction is not None and interaction.ended_at is not None
    assert state(runtime, row.task_id) == "canceled"
    record = await runtime.call_records.get(call.sid)
    assert record is not None and record.interaction_id == row.interaction_id


def test_twiml_parses_as_xml() -> None:
    # The module renders with twilio's library: a smoke check that it is XML.
    from ivr.twilio import apology

    assert ET.fromstring(str(apology().to_xml())).tag == "Response"


async def test_caller_hanging_up_while_recording_leaves_the_voicemail(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    sim, runtime = await start_runtime(tmp_path, TwilioConfig(auth_token=Secret(TOKEN)), CLOSED)
    try:
        call = caller(runtime, keys=["1", "1"], recordings=[None])  # hangs up to end it
        await call.run(http)
        row = await session_row(runtime, call.sid)
        assert row.outcome == "voicemail" and row.task_id is not None
        assert state(runtime, row.task_id) == "waiting"
        assert "Thank you, we will get back to you. Goodbye." not in call.said()
    finally:
        await runtime.stop()
        await sim.stop()


async def test_the_queue_wait_url_plays_the_configured_hold_music(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    music = "https://cdn.example.com/hold.mp3"
    twilio = TwilioConfig(auth_token=Secret(TOKEN), hold_music_url=music)
    sim, runtime = await start_runtime(tmp_path, twilio)
    try:
        url = runtime.url + "/twilio/wait"
        fields = {"CallSid": call_sid(), "QueuePosition": "1", "QueueTime": "3"}
        status, body = await post_signed(http, url, fields)
        assert status == 200
        document = ET.fromstring(body)
        assert [(v.tag, v.text) for v in document] == [("Play", music)]
        async with http.post(url, data=fields) as resp:
            assert resp.status == 403
    finally:
        await runtime.stop()
        await sim.stop()


def test_hold_music_url_must_be_an_http_url() -> None:
    from callwright.config import ConfigError, parse_config

    base = {"ami": {"secret": "s"}}
    with pytest.raises(ConfigError, match=r"twilio\.hold_music_url: expected an http"):
        parse_config({**base, "twilio": {"hold_music_url": "file:///etc/passwd"}}, env={})
    config = parse_config({**base, "twilio": {"hold_music_url": "https://x.example/a.mp3"}}, env={})
    assert config.twilio.hold_music_url == "https://x.example/a.mp3"
