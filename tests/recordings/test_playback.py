"""Playback over the real stack: the Callwright runtime (connected to the PBX simulator
over TCP), SQLite in a temp directory, recordings as real WAV files (written with the
standard library's ``wave``) stored through ``LocalStorage``, an HTTP client.

Who may play (supervisors, admins, the API token; the agent who handled the call only
with ``agent_may_play``), the signed media URL with its ranges, tampered and expired
links, bad ids and path tricks, a file gone from disk, an encrypted object served by
range, and the audit rows each of these leaves."""

from __future__ import annotations

import io
import math
import os
import struct
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from agent_desk.audit import AuditEvent
from callwright.config import RecordingsConfig, Secret
from callwright.runtime import Runtime
from crm.repository import CustomerRepository, InteractionRepository
from recordings.playback import MediaTokens
from recordings.repository import Recording, RecordingRepository
from recordings.storage import LocalStorage, key_for
from routing.persistence import Agent, AgentRepository
from sim.pbx.server import PbxSimulator
from store import make_engine
from store.migrate import upgrade
from tests.integration.conftest import SIGNING_KEY, TOKEN, make_config

ENCRYPTION_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def wav_bytes(seconds: float, frequency: int = 440, rate: int = 8000) -> bytes:
    """A real WAV file: 8 kHz, 16-bit, mono, a sine tone (a whole number of cycles per
    second, so one second repeats seamlessly)."""
    second = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * frequency * n / rate)))
        for n in range(rate)
    )
    frames = (second * math.ceil(seconds))[: int(seconds * rate) * 2]
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


def _spool_file(spool: Path, name: str, data: bytes) -> Path:
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / name
    path.write_bytes(data)
    return path


async def store_recording(
    repo: RecordingRepository,
    storage: LocalStorage,
    spool: Path,
    *,
    interaction_id: int,
    agent_id: int | None,
    customer_id: int | None,
    data: bytes,
    started_at: datetime | None = None,
) -> Recording:
    """A recording as ingest leaves it: the row, the file put in storage, ``stored``."""
    started = started_at or datetime.now(UTC) - timedelta(minutes=5)
    rec = await repo.create(
        interaction_id=interaction_id,
        agent_id=agent_id,
        customer_id=customer_id,
        queue="support",
        started_at=started,
    )
    source = _spool_file(spool, f"{rec.id}.wav", data)
    key = key_for(rec.id, started)
    stored = await storage.put(key, source)
    with wave.open(str(source), "rb") as w:
        duration_ms = int(w.getnframes() * 1000 / w.getframerate())
    os.unlink(source)
    return await repo.mark_stored(
        rec.id,
        storage_key=key,
        sha256=stored.sha256,
        size=stored.size,
        duration_ms=duration_ms,
        encrypted=stored.encrypted,
        retain_until=None,
    )


@dataclass
class PlaybackStack:
    runtime: Runtime
    http: aiohttp.ClientSession
    accounts: dict[str, Agent]
    tokens: dict[str, str | None]
    interaction_id: int
    customer_id: int
    spool: Path

    @property
    def url(self) -> str:
        return self.runtime.url

    def headers(self, role: str) -> dict[str, str]:
        token = self.tokens[role]
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    async def get_json(self, role: str, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path, headers=self.headers(role)) as resp:
            return resp.status, await resp.json()

    async def issue(self, role: str, recording_id: str, purpose: str = "play") -> tuple[int, Any]:
        return await self.get_json(
            role, f"/api/recordings/{recording_id}/playback?purpose={purpose}"
        )

    async def media(
        self, url: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        """A media request with no bearer header, as an <audio> element makes it."""
        target = URL(self.url + url, encoded=True) if "%" in url else self.url + url
        async with self.http.request(method, target, headers=headers or {}) as resp:
            return resp.status, dict(resp.headers), await resp.read()

    async def record(self, data: bytes, *, agent: str = "owner", **kw: Any) -> Recording:
        return await store_recording(
            self.runtime.recordings,
            self.runtime.recording_storage,
            self.spool,
            interaction_id=self.interaction_id,
            agent_id=self.accounts[agent].id,
            customer_id=self.customer_id,
            data=data,
            **kw,
        )

    async def audit_since(self, last_id: int) -> list[AuditEvent]:
        return [e for e in await self.runtime.audit.query(limit=500) if e.id > last_id][::-1]

    async def last_audit_id(self) -> int:
        events = await self.runtime.audit.query(limit=1)
        return events[0].id if events else 0


MakeStack = Callable[..., Awaitable[PlaybackStack]]


@pytest.fixture
async def make_stack(
    sim: PbxSimulator,
    tmp_path: Path,
) -> AsyncIterator[MakeStack]:
    made: list[tuple[Runtime, aiohttp.ClientSession]] = []

    async def make(*, agent_may_play: bool = False, encrypted: bool = False) -> PlaybackStack:
        data = tmp_path / f"data-{len(made)}"
        url = f"sqlite+aiosqlite:///{data / 'callwright.db'}"
        await upgrade(url)
        engine = make_engine(url)
        agents = AgentRepository(engine)
        accounts = {}
        for role, (username, ext, account_role) in {
            "owner": ("alice", "1001", "agent"),
            "other": ("bob", "1002", "agent"),
            "supervisor": ("carol", "1003", "supervisor"),
            "admin": ("dave", "1004", "admin"),
        }.items():
            accounts[role] = await agents.create(username, username.title(), ext, role=account_role)
        customer = await CustomerRepository(engine).create("Ada Lovelace", phones=["+15550100001"])
        interaction = await InteractionRepository(engine).create(
            channel="voice",
            direction="inbound",
            started_at=datetime.now(UTC) - timedelta(minutes=10),
            customer_id=customer.id,
            agent_id=accounts["owner"].id,
            queue="support",
        )
        await engine.dispose()
        config = make_config(sim.port, data)
        config = replace(
            config,
            recordings=RecordingsConfig(
                enabled=True,
                dir=data / "recordings",
                spool_dir=data / "spool",
                agent_may_play=agent_may_play,
                encryption_key=Secret(ENCRYPTION_KEY if encrypted else ""),
            ),
        )
        runtime = Runtime(config)
        await runtime.start()
        http = aiohttp.ClientSession()
        made.append((runtime, http))
        tokens: dict[str, str | None] = {
            "anonymous": None,
            "service": TOKEN,
            **{role: runtime.auth.issue(agent)[0] for role, agent in accounts.items()},
        }
        return PlaybackStack(
            runtime, http, accounts, tokens, interaction.id, customer.id, data / "spool"
        )

    yield make
    for runtime, http in made:
        await http.close()
        await runtime.stop()


@pytest.fixture
async def stack(make_stack: MakeStack) -> PlaybackStack:
    return await make_stack()


WAV = wav_bytes(1.5)  # 24,044 bytes


# -- who may play -------------------------------------------------------------------


@pytest.mark.parametrize("agent_may_play", [False, True], ids=["agents-may-not", "agents-may"])
async def test_the_access_matrix_by_role(make_stack: MakeStack, agent_may_play: bool) -> None:
    s = await make_stack(agent_may_play=agent_may_play)
    rec = await s.record(WAV)
    allowed = {
        "owner": agent_may_play,  # handled the call
        "other": False,
        "supervisor": True,
        "admin": True,
        "service": True,
    }
    for role, may in allowed.items():
        mark = await s.last_audit_id()
        status, body = await s.issue(role, rec.id)
        audited = await s.audit_since(mark)
        principal = "api-token" if role == "service" else str(s.accounts[role].id)
        if not may:
            assert (status, body["error"], body["action"]) == (403, "forbidden", "recordings.play")
            (row,) = audited
            assert (row.action, row.outcome, row.actor_id, row.subject) == (
                "recordings.play",
                "denied",
                principal,
                rec.id,
            )
            continue
        assert status == 200, (role, body)
        assert body["url"].startswith("/recordings/media/")
        assert body["recording"]["id"] == rec.id and body["purpose"] == "play"
        (row,) = audited
        assert (row.action, row.outcome, row.actor_id, row.subject) == (
            "recordings.url_issued",
            "allowed",
            principal,
            rec.id,
        )
        assert row.detail["purpose"] == "play" and row.client_ip == "127.0.0.1"
        status, _, content = await s.media(body["url"])
        assert (status, content) == (200, WAV), role
        (played,) = await s.audit_since(row.id)
        assert (played.action, played.outcome, played.actor_id, played.subject) == (
            "recordings.played",
            "allowed",
            principal,
            rec.id,
        )
        assert played.detail["token"] == row.detail["token"]

    # No token at all: 401, and the media route without a token is just a bad path.
    status, body = await s.issue("anonymous", rec.id)
    assert (status, body["error"]) == (401, "unauthenticated")
    status, _, content = await s.media("/recordings/media/")
    assert status == 404 and content != WAV


async def test_an_agent_lists_only_their_own_recordings_when_allowed(
    make_stack: MakeStack,
) -> None:
    s = await make_stack(agent_may_play=True)
    mine = await s.record(WAV, agent="owner")
    theirs = await s.record(WAV, agent="other")

    assert await s.get_json("owner", "/api/recordings/access") == (200, {"may_play": "own"})
    status, body = await s.get_json("owner", "/api/recordings")
    assert status == 200
    assert [r["id"] for r in body["recordings"]] == [mine.id]
    status, body = await s.get_json("owner", f"/api/recordings?agent_id={s.accounts['other'].id}")
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await s.issue("owner", theirs.id)
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await s.get_json("supervisor", "/api/recordings")
    assert {r["id"] for r in body["recordings"]} == {mine.id, theirs.id}
    # Nothing a client could use to reach the file system directly.
    assert not {"storage_key", "spool_name", "sha256"} & set(body["recordings"][0])


async def test_agents_may_not_list_recordings_by_default(stack: PlaybackStack) -> None:
    await stack.record(WAV)
    status, body = await stack.get_json("owner", "/api/recordings")
    assert (status, body["error"]) == (403, "forbidden")
    assert "agent_may_play" in body["message"]
    # What a page asks first, so as to show no Play button rather than be refused.
    assert await stack.get_json("owner", "/api/recordings/access") == (200, {"may_play": "none"})
    for role in ("supervisor", "admin", "service"):
        assert await stack.get_json(role, "/api/recordings/access") == (200, {"may_play": "all"})


async def test_supervisors_list_interactions_with_their_recordings(stack: PlaybackStack) -> None:
    rec = await stack.record(WAV)
    interactions = InteractionRepository(stack.runtime.engine)
    unrecorded = await interactions.create(
        channel="email", direction="inbound", started_at=datetime.now(UTC)
    )
    status, body = await stack.get_json("supervisor", "/api/interactions")
    assert status == 200 and body["total"] == 2
    by_id = {i["id"]: i for i in body["interactions"]}
    assert [r["id"] for r in by_id[stack.interaction_id]["recordings"]] == [rec.id]
    assert by_id[stack.interaction_id]["customer"]["name"] == "Ada Lovelace"
    assert by_id[stack.interaction_id]["agent"]["display_name"] == "Alice"
    assert by_id[unrecorded.id]["recordings"] == []
    status, body = await stack.get_json("supervisor", "/api/interactions?recorded=true")
    assert [i["id"] for i in body["interactions"]] == [stack.interaction_id]
    status, body = await stack.get_json("supervisor", "/api/interactions?per_page=1&page=2")
    assert (body["total"], len(body["interactions"]), body["page"]) == (2, 1, 2)
    for bad in ("page=0", "per_page=1000", "from=yesterday", "channel=fax", "customer_id=x"):
        status, body = await stack.get_json("supervisor", f"/api/interactions?{bad}")
        assert (status, body["error"]) == (400, "invalid_request"), bad
    status, body = await stack.get_json("owner", "/api/interactions")
    assert (status, body["error"]) == (403, "forbidden")


# -- ranges -------------------------------------------------------------------------


async def test_the_media_url_serves_ranges(stack: PlaybackStack) -> None:
    rec = await stack.record(WAV)
    size = len(WAV)
    _, body = await stack.issue("supervisor", rec.id)
    url = body["url"]

    status, headers, content = await stack.media(url)
    assert (status, content) == (200, WAV)
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "audio/wav"
    assert headers["Content-Length"] == str(size)
    assert headers["Content-Disposition"] == "inline"
    assert "no-store" in headers["Cache-Control"]
    assert "Content-Range" not in headers

    cases = {
        "bytes=0-99": (0, 99),
        "bytes=100-": (100, size - 1),
        "bytes=-100": (size - 100, size - 1),
        f"bytes={size - 10}-{size + 5000}": (size - 10, size - 1),
    }
    for header, (first, last) in cases.items():
        status, headers, content = await stack.media(url, {"Range": header})
        assert status == 206, header
        assert headers["Content-Range"] == f"bytes {first}-{last}/{size}", header
        assert content == WAV[first : last + 1], header
        assert headers["Content-Length"] == str(last - first + 1)

    bad_ranges = (f"bytes={size}-", f"bytes={size + 100}-{size + 200}", "bytes=abc", "bytes=9-5")
    mark = await stack.last_audit_id()
    for header in bad_ranges:
        status, headers, content = await stack.media(url, {"Range": header})
        assert status == 416, header
        assert headers["Content-Range"] == f"bytes */{size}", header
    refused = await stack.audit_since(mark)
    assert [(e.action, e.outcome, e.detail["status"], e.detail["range"]) for e in refused] == [
        ("recordings.media", "failed", 416, header) for header in bad_ranges
    ]
    assert {e.actor_id for e in refused} == {str(stack.accounts["supervisor"].id)}

    # Several ranges: the whole file (RFC 9110 lets a server ignore Range).
    status, headers, content = await stack.media(url, {"Range": "bytes=0-9,20-29"})
    assert (status, content) == (200, WAV)
    # A Range for another version of the file (If-Range does not match): the whole file.
    status, headers, content = await stack.media(url, {"Range": "bytes=0-9", "If-Range": '"x"'})
    assert (status, content) == (200, WAV)
    status, headers, content = await stack.media(
        url, {"Range": "bytes=0-9", "If-Range": f'"{rec.sha256}"'}
    )
    assert (status, content) == (206, WAV[:10])
    # HEAD: the headers, no body.
    status, headers, content = await stack.media(url, method="HEAD")
    assert (status, headers["Content-Length"], content) == (200, str(size), b"")


async def test_an_encrypted_recording_is_served_by_range(make_stack: MakeStack) -> None:
    s = await make_stack(encrypted=True)
    data = wav_bytes(13.0, frequency=300)  # 208,044 bytes: four 64 KiB chunks
    rec = await s.record(data)
    assert rec.encrypted
    on_disk = (s.runtime.recording_storage.root / rec.storage_key).read_bytes()  # type: ignore[operator]
    assert data[44:1044] not in on_disk  # no plaintext audio at rest

    _, body = await s.issue("supervisor", rec.id)
    status, headers, content = await s.media(body["url"])
    assert (status, content) == (200, data)
    size = len(data)
    chunk = 64 * 1024
    for first, last in ((0, 43), (chunk - 10, chunk + 10), (2 * chunk + 5, 3 * chunk + 100)):
        status, headers, content = await s.media(body["url"], {"Range": f"bytes={first}-{last}"})
        assert status == 206
        assert headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert content == data[first : last + 1]
    status, _, content = await s.media(body["url"], {"Range": "bytes=-7"})
    assert (status, content) == (206, data[-7:])


async def test_a_download_link_is_an_attachment(stack: PlaybackStack) -> None:
    rec = await stack.record(WAV)
    mark = await stack.last_audit_id()
    status, body = await stack.issue("admin", rec.id, "download")
    assert status == 200 and body["purpose"] == "download"
    status, headers, content = await stack.media(body["url"])
    assert (status, content) == (200, WAV)
    assert headers["Content-Disposition"] == f'attachment; filename="recording-{rec.id}.wav"'
    assert [(e.action, e.detail.get("purpose")) for e in await stack.audit_since(mark)] == [
        ("recordings.url_issued", "download"),
        ("recordings.downloaded", None),
    ]
    status, body = await stack.issue("admin", rec.id, "stream")
    assert (status, body["error"]) == (400, "invalid_request")


async def test_one_playback_row_per_link_however_often_it_seeks(stack: PlaybackStack) -> None:
    rec = await stack.record(WAV)
    mark = await stack.last_audit_id()
    _, body = await stack.issue("supervisor", rec.id)
    for header in ("bytes=0-", "bytes=1000-1999", "bytes=5000-"):
        status, _, _ = await stack.media(body["url"], {"Range": header})
        assert status == 206
    _, again = await stack.issue("supervisor", rec.id)
    await stack.media(again["url"])
    rows = await stack.audit_since(mark)
    assert [e.action for e in rows] == [
        "recordings.url_issued",
        "recordings.played",
        "recordings.url_issued",
        "recordings.played",
    ]
    assert rows[1].detail["range"] == f"0-{len(WAV) - 1}" and rows[1].detail["status"] == 206
    # The live token never lands in the audit log.
    assert all(body["url"].rsplit("/", 1)[1] not in str(e.detail) for e in rows)


# -- refusals -------------------------------------------------------------------------


async def test_a_tampered_or_expired_link_is_refused_and_audited(stack: PlaybackStack) -> None:
    rec = await stack.record(WAV)
    now = [time.time()]
    stack.runtime.playback.tokens = MediaTokens(SIGNING_KEY, lifetime=300, clock=lambda: now[0])
    _, body = await stack.issue("supervisor", rec.id)
    url = body["url"]
    token = url.rsplit("/", 1)[1]
    other = await stack.record(WAV)
    _, other_body = await stack.issue("supervisor", other.id)
    other_token = other_body["url"].rsplit("/", 1)[1]
    payload, stamp, sig = token.rsplit(".", 2)
    forged = MediaTokens("another-signing-key-0123456789abcdef", lifetime=300).issue(
        rec.id, str(stack.accounts["supervisor"].id), "supervisor", "play"
    )[0]
    tampered = [
        f"{other_token.rsplit('.', 2)[0]}.{stamp}.{sig}",  # another recording's payload
        f"{payload}.{stamp}.{'A' * len(sig)}",
        forged,
        stack.tokens["supervisor"],  # a session token is not a media token
    ]
    mark = await stack.last_audit_id()
    for bad in tampered:
        assert bad is not None
        status, _, content = await stack.media(f"/recordings/media/{bad}")
        assert status == 403 and content != WAV, bad
    rows = await stack.audit_since(mark)
    assert [(e.action, e.outcome, e.detail["status"], e.actor_id) for e in rows] == [
        ("recordings.media", "denied", 403, None)
    ] * len(tampered)

    now[0] += 299
    status, _, content = await stack.media(url, {"Range": "bytes=0-9"})
    assert (status, content) == (206, WAV[:10])
    now[0] += 2
    mark = await stack.last_audit_id()
    status, headers, _ = await stack.media(url)
    assert status == 410
    assert "no-store" in headers["Cache-Control"]
    (row,) = await stack.audit_since(mark)
    assert (row.action, row.outcome, row.detail["reason"], row.subject) == (
        "recordings.media",
        "denied",
        "expired",
        rec.id,
    )
    assert row.actor_id == str(stack.accounts["supervisor"].id)


async def test_a_link_stops_working_when_its_holder_is_deactivated(stack: PlaybackStack) -> None:
    rec = await stack.record(WAV)
    _, body = await stack.issue("supervisor", rec.id)
    await stack.runtime.agents.update(stack.accounts["supervisor"].id, active=False)
    status, _, content = await stack.media(body["url"])
    assert status == 403 and content != WAV
    (row,) = await stack.runtime.audit.query(action="recordings.media", limit=1)
    assert row.detail["reason"] == "revoked"


async def test_bad_ids_and_path_tricks_never_reach_the_file_system(stack: PlaybackStack) -> None:
    rec = await stack.record(WAV)
    secret = stack.spool.parent / "secret.wav"
    secret.write_bytes(b"RIFF-not-for-you")
    mark = await stack.last_audit_id()

    for bad_id, expected in (
        ("not-a-recording", 400),
        (rec.id.upper(), 400),
        (rec.id + "0", 400),
        ("..%2F..%2Fsecret", 400),
        ("0" * 32, 404),  # well formed, unknown (another deployment's, or purged)
    ):
        async with stack.http.get(
            URL(f"{stack.url}/api/recordings/{bad_id}/playback", encoded=True),
            headers=stack.headers("supervisor"),
        ) as resp:
            assert resp.status == expected, bad_id
    rows = await stack.audit_since(mark)
    assert [(e.action, e.outcome, e.detail["status"]) for e in rows] == [
        ("recordings.play", "failed", 400)
    ] * 4 + [("recordings.play", "failed", 404)]

    mark = await stack.last_audit_id()
    for path in (
        "/recordings/media/..%2F..%2Fsecret.wav",
        "/recordings/media/%2e%2e",
        "/recordings/media/a..b",
        "/recordings/media/" + "x" * 2000,
    ):
        status, _, content = await stack.media(path)
        assert status == 400 and b"not-for-you" not in content, path
    rows = await stack.audit_since(mark)
    assert [(e.action, e.outcome, e.detail["reason"]) for e in rows] == [
        ("recordings.media", "denied", "bad_path")
    ] * 4
    assert all("secret" not in e.detail["path"] for e in rows)
    # A literal ../ is resolved by the client before it is sent: no route, no file.
    status, _, content = await stack.media("/recordings/media/../../secret.wav")
    assert status in (401, 404) and b"not-for-you" not in content


async def test_a_missing_file_is_404_and_flags_the_row(stack: PlaybackStack) -> None:
    storage = stack.runtime.recording_storage
    rec = await stack.record(WAV)
    assert rec.storage_key is not None
    os.unlink(storage.root / rec.storage_key)
    status, body = await stack.issue("supervisor", rec.id)
    assert (status, body["error"]) == (404, "file_missing")
    flagged = await stack.runtime.recordings.get(rec.id)
    assert flagged is not None and flagged.state == "missing"
    (row,) = await stack.runtime.audit.query(action="recordings.play", limit=1)
    assert (row.outcome, row.detail["reason"]) == ("failed", "file_missing")

    # Gone between the link and the request.
    later = await stack.record(WAV)
    assert later.storage_key is not None
    _, body = await stack.issue("supervisor", later.id)
    os.unlink(storage.root / later.storage_key)
    status, _, _ = await stack.media(body["url"])
    assert status == 404
    flagged = await stack.runtime.recordings.get(later.id)
    assert flagged is not None and flagged.state == "missing"
    (row,) = await stack.runtime.audit.query(action="recordings.media", limit=1)
    assert (row.outcome, row.detail["reason"], row.subject) == ("failed", "file_missing", later.id)


async def test_a_recording_not_yet_stored_cannot_be_played(stack: PlaybackStack) -> None:
    rec = await stack.runtime.recordings.create(
        interaction_id=stack.interaction_id, agent_id=stack.accounts["owner"].id
    )
    status, body = await stack.issue("supervisor", rec.id)
    assert (status, body["error"]) == (409, "not_stored")
    assert "recording" in body["message"]
