"""Twilio recording status callbacks over real HTTP: signed with twilio's own
RequestValidator they record the recording's metadata on a ``twilio`` row;
unsigned, forged or signed for another URL they get 403, an audit row, and
change nothing. Behind a proxy the URL is rebuilt from X-Forwarded-Proto and
Host only when trust_proxy is set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from agent_desk.audit import audit_events
from callwright.config import Secret, TwilioConfig
from callwright.runtime import Runtime
from recordings.persistence import recordings
from sim.pbx.server import PbxSimulator
from tests.integration.conftest import make_config

AUTH_TOKEN = "twilio-test-auth-token-0123456789"
PATH = "/twilio/recording-status"
CALL_SID = "CA" + "0123456789abcdef" * 2
RECORDING_SID = "RE" + "fedcba9876543210" * 2


async def start(tmp_path: Path, twilio: TwilioConfig) -> tuple[PbxSimulator, Runtime]:
    sim = PbxSimulator(answer_delay=0.02, login_failure_delay=0)
    await sim.start()
    config = replace(make_config(sim.port, tmp_path / "data"), twilio=twilio)
    runtime = Runtime(config)
    await runtime.start()
    return sim, runtime


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    sim, rt = await start(tmp_path, TwilioConfig(auth_token=Secret(AUTH_TOKEN)))
    try:
        yield rt
    finally:
        await rt.stop()
        await sim.stop()


async def interaction(runtime: Runtime, call_sid: str = CALL_SID) -> Any:
    customer = await runtime.customers.create("Ada Lovelace", phones=["+14155550100"])
    return await runtime.interactions.create(
        channel="voice",
        direction="inbound",
        call_id=call_sid,
        queue="support",
        customer_id=customer.id,
        started_at=datetime.now(UTC),
    )


def params(status: str = "in-progress", **extra: str) -> dict[str, str]:
    fields = {
        "AccountSid": "AC" + "1" * 32,
        "CallSid": CALL_SID,
        "RecordingSid": RECORDING_SID,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{RECORDING_SID}",
        "RecordingStatus": status,
        "RecordingChannels": "1",
        "RecordingSource": "DialVerb",
        "RecordingStartTime": "Mon, 30 Nov 2026 06:00:00 +0000",
    }
    fields.update(extra)
    return fields


def sign(url: str, fields: dict[str, str], token: str = AUTH_TOKEN) -> str:
    signature: str = RequestValidator(token).compute_signature(url, fields)
    return signature


async def post(
    url: str, fields: dict[str, str], headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=fields, headers=headers or {}) as resp,
    ):
        return resp.status, await resp.json()


async def rows(runtime: Runtime) -> int:
    async with runtime.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(recordings))).scalar_one())


async def denied(runtime: Runtime) -> list[Any]:
    async with runtime.engine.connect() as conn:
        result = await conn.execute(
            select(audit_events).where(audit_events.c.action == "twilio.recording_status")
        )
        return list(result)


async def test_signed_callbacks_record_the_twilio_recording(runtime: Runtime) -> None:
    linked = await interaction(runtime)
    url = runtime.url + PATH
    fields = params("in-progress")
    status, body = await post(url, fields, {"X-Twilio-Signature": sign(url, fields)})
    assert status == 200, body
    row = await runtime.recordings.get(body["recording_id"])
    assert row is not None and row.state == "recording" and row.source == "twilio"
    assert (row.external_id, row.call_id) == (RECORDING_SID, CALL_SID)
    assert row.interaction_id == linked.id and row.customer_id == linked.customer_id
    assert row.queue == "support" and row.storage_key is None
    assert row.started_at == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)

    fields = params("completed", RecordingDuration="42")
    status, body = await post(url, fields, {"X-Twilio-Signature": sign(url, fields)})
    assert status == 200 and body["state"] == "ended", body
    done = await runtime.recordings.get(row.id)
    assert done is not None and done.id == row.id  # the same row, updated
    assert done.state == "ended" and done.duration_ms == 42000 and done.ended_at is not None
    assert done.storage_key is None  # the file stays at Twilio
    assert await rows(runtime) == 1
    assert await denied(runtime) == []


@pytest.mark.parametrize(
    "headers",
    [
        {},  # unsigned
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},  # forged
        {"X-Twilio-Signature": "SIGNED-WITH-ANOTHER-TOKEN"},
        {"X-Twilio-Signature": "SIGNED-FOR-ANOTHER-URL"},
    ],
)
async def test_unsigned_or_forged_callbacks_are_refused_audited_and_change_nothing(
    runtime: Runtime, headers: dict[str, str]
) -> None:
    await interaction(runtime)
    url = runtime.url + PATH
    fields = params("completed", RecordingDuration="5")
    if headers.get("X-Twilio-Signature") == "SIGNED-WITH-ANOTHER-TOKEN":
        headers = {"X-Twilio-Signature": sign(url, fields, token="another-token-abcdef")}
    elif headers.get("X-Twilio-Signature") == "SIGNED-FOR-ANOTHER-URL":
        headers = {"X-Twilio-Signature": sign("https://evil.example/x", fields)}
    status, body = await post(url, fields, headers)
    assert status == 403 and body["error"] == "forbidden"
    assert await rows(runtime) == 0
    (audit,) = await denied(runtime)
    assert audit.outcome == "denied" and audit.actor_id is None
    assert audit.client_ip == "127.0.0.1" and audit.detail["status"] == 403
    # a tampered field under a valid signature is refused too
    good = sign(url, fields)
    tampered = dict(fields, RecordingDuration="6")
    status, _ = await post(url, tampered, {"X-Twilio-Signature": good})
    assert status == 403 and await rows(runtime) == 0


async def test_a_signed_callback_for_an_unknown_call_or_with_bad_fields_stores_nothing(
    runtime: Runtime,
) -> None:
    url = runtime.url + PATH
    fields = params()
    status, body = await post(url, fields, {"X-Twilio-Signature": sign(url, fields)})
    assert status == 404 and body["error"] == "unknown_call"
    await interaction(runtime)
    for bad in (
        params(RecordingSid="RE../../etc/passwd"),
        params(RecordingStatus="deleted"),
        params(RecordingDuration="ten"),
    ):
        status, body = await post(url, bad, {"X-Twilio-Signature": sign(url, bad)})
        assert status == 400 and body["error"] == "invalid_request", body
    assert await rows(runtime) == 0


async def test_behind_a_proxy_the_public_url_is_checked_only_when_trusted(
    tmp_path: Path,
) -> None:
    public = "https://cc.example.com" + PATH
    fields = params()
    proxy_headers = {
        "X-Forwarded-Proto": "https",
        "Host": "cc.example.com",
        "X-Twilio-Signature": sign(public, fields),
    }
    for trust, expected in ((False, 403), (True, 200)):
        sim, rt = await start(
            tmp_path / str(trust), TwilioConfig(auth_token=Secret(AUTH_TOKEN), trust_proxy=trust)
        )
        try:
            await interaction(rt)
            status, _ = await post(rt.url + PATH, fields, proxy_headers)
            assert status == expected
        finally:
            await rt.stop()
            await sim.stop()
    # a configured public URL is used as is, whatever the headers say
    sim, rt = await start(
        tmp_path / "public",
        TwilioConfig(auth_token=Secret(AUTH_TOKEN), public_url="https://cc.example.com"),
    )
    try:
        await interaction(rt)
        status, _ = await post(rt.url + PATH, fields, {"X-Twilio-Signature": sign(public, fields)})
        assert status == 200
        status, _ = await post(
            rt.url + PATH,
            fields,
            {"X-Twilio-Signature": sign(rt.url + PATH, fields), "Host": "cc.example.com"},
        )
        assert status == 403
    finally:
        await rt.stop()
        await sim.stop()


async def test_without_an_auth_token_every_callback_is_refused(tmp_path: Path) -> None:
    sim, rt = await start(tmp_path, TwilioConfig())
    try:
        await interaction(rt)
        url = rt.url + PATH
        fields = params()
        status, _ = await post(url, fields, {"X-Twilio-Signature": sign(url, fields, token="")})
        assert status == 403 and await rows(rt) == 0
        (audit,) = await denied(rt)
        assert audit.detail["reason"] == "no Twilio auth token is configured"
    finally:
        await rt.stop()
        await sim.stop()
