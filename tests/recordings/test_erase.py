"""GDPR erasure on SQLite and PostgreSQL: refused under a legal hold (nothing changed,
audited), otherwise recordings (files and rows), personal data, e-mail bodies and mail
files are gone, interactions stay anonymised, and the report says what was removed."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from agent_desk.audit import AuditLog
from crm.mail import MailStore, parse_email
from crm.mail.persistence import email_attachments, email_messages
from cti.persistence import call_records
from recordings.erase import ERASED_NAME, Eraser, LegalHoldActive, RecordingInProgress
from recordings.ingest import Ingestor
from recordings.repository import RecordingRepository
from recordings.retention import SYSTEM
from recordings.storage import LocalStorage
from recordings.wav import write_tone
from store.errors import NotFoundError
from tests.integration.conftest import Stack
from tests.recordings.conftest import T0, FakeClock, Seeded


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def mail_from_customer() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jörg Kunde <jorg@example.com>"
    msg["To"] = "support@callwright.example"
    msg["Subject"] = "My card number 4111 1111 1111 1111"
    msg["Message-ID"] = "<erase-1@example.com>"
    msg.set_content("Please call me back on +1 415 555 0100.")
    msg.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf",
                       filename="invoice.pdf")  # fmt: skip
    return msg.as_bytes()


class World:
    def __init__(self, seeded: Seeded, repo: RecordingRepository, tmp_path: Path) -> None:
        self.seeded = seeded
        self.repo = repo
        self.data_dir = tmp_path / "data"
        self.spool = tmp_path / "spool"
        self.spool.mkdir()
        self.storage = LocalStorage(tmp_path / "store", bytes(range(32)))
        self.audit = AuditLog(seeded.engine)
        self.eraser = Eraser(seeded.engine, repo, self.storage, self.audit, data_dir=self.data_dir)

    async def recording(self, **fields: Any) -> str:
        name = f"r{len(files_under(self.storage.root))}.wav"
        rec = await self.repo.create(spool_name=name, **fields)
        write_tone(self.spool / name, 0.2)
        stored = await Ingestor(self.repo, self.storage, self.spool).finish(rec.id)
        assert stored.state == "stored"
        return rec.id


@pytest.fixture
async def world(seeded: Seeded, repo: RecordingRepository, tmp_path: Path) -> World:
    return World(seeded, repo, tmp_path)


async def test_erase_removes_recordings_personal_data_and_mail(
    world: World, clock: FakeClock
) -> None:
    s = world.seeded
    # A call with a recording, its call record, and notes from the wrap-up.
    await s.interactions.update(s.interaction_id, notes="Card ends 1111; lives at 1 Main St")
    on_call = await world.recording(
        interaction_id=s.interaction_id, customer_id=s.customer_id, agent_id=s.agent_id
    )
    # A recording linked only through the interaction (customer unknown at the time).
    via_interaction = await world.recording(interaction_id=s.interaction_id)
    async with s.engine.begin() as conn:
        await conn.execute(
            insert(call_records).values(
                id="call-1", state="ended", caller_num="+14155550100", caller_name="Jorg",
                callee_num="1001", callee_name="Alice", started_at=T0, channels=[],
                interaction_id=s.interaction_id, updated_at=T0,
            )
        )  # fmt: skip
    # An e-mail from the customer, with an attachment, on a second interaction.
    mail = MailStore(s.engine, world.data_dir, customers=s.customers)
    raw = mail_from_customer()
    stored_mail = await mail.store_inbound(parse_email(raw), raw)
    assert stored_mail.customer_id == s.customer_id
    assert len(files_under(world.data_dir / "mail")) == 2
    # Someone else's recording stays.
    other = await s.interactions.create(channel="voice", direction="inbound", started_at=T0)
    kept = await world.recording(interaction_id=other.id)

    report = await world.eraser.erase(s.customer_id, actor=SYSTEM)

    assert sorted(report.recordings) == sorted([on_call, via_interaction])
    assert report.recording_files == 2
    assert (report.phones, report.emails) == (1, 1)
    assert report.interactions == 2 and report.call_records == 1
    assert (report.email_messages, report.attachments, report.mail_files) == (1, 1, 2)
    # Recordings: rows and files gone; the other customer's recording stays.
    assert await world.repo.get(on_call) is None and await world.repo.get(via_interaction) is None
    kept_row = await world.repo.get(kept)
    assert kept_row is not None
    assert [k async for k in world.storage.keys()] == [kept_row.storage_key]
    # Personal data.
    customer = await s.customers.get(s.customer_id)
    assert customer is not None
    assert (customer.name, customer.phones, customer.emails) == (ERASED_NAME, (), ())
    assert customer.notes is None and customer.account_number is None
    assert await s.customers.find_by_phone("+14155550100") is None
    # Interactions stay for statistics, without notes or subject.
    interaction = await s.interactions.get(s.interaction_id)
    assert interaction is not None and interaction.notes is None
    assert (interaction.channel, interaction.queue, interaction.agent_id) == (
        "voice",
        "billing",
        s.agent_id,
    )
    async with s.engine.connect() as conn:
        call = (await conn.execute(select(call_records))).one()
        message = (await conn.execute(select(email_messages))).one()
        attachments = (await conn.execute(select(email_attachments))).all()
    assert (call.caller_num, call.caller_name, call.callee_num, call.callee_name) == (None,) * 4
    assert call.state == "ended" and call.interaction_id == s.interaction_id
    assert message.text_body is None and message.subject == "" and message.from_addr is None
    assert "4111" not in str(tuple(message)) and "example.com>" not in (message.reply_to or "")
    assert attachments == []
    assert files_under(world.data_dir / "mail") == []
    # Audited: one row per recording and one for the erasure with the counts.
    erased = await world.audit.query(action="recordings.erase")
    assert sorted(e.subject or "" for e in erased) == sorted(
        [f"recording:{on_call}", f"recording:{via_interaction}"]
    )
    (row,) = await world.audit.query(action="customers.erase")
    assert (row.actor_id, row.outcome, row.subject) == (
        "system",
        "allowed",
        f"customer:{s.customer_id}",
    )
    assert row.detail["phones"] == 1 and row.detail["recordings"] == 2
    assert "Kunde" not in str(row.detail) and "+1415" not in str(row.detail)

    # Erasing again finds nothing more to remove.
    again = await world.eraser.erase(s.customer_id, actor=SYSTEM)
    assert again.recordings == () and again.phones == 0 and again.mail_files == 0


@pytest.mark.parametrize("on", ["customer", "interaction"])
async def test_erase_is_refused_while_a_legal_hold_is_on(world: World, on: str) -> None:
    s = world.seeded
    rec_id = await world.recording(interaction_id=s.interaction_id, customer_id=s.customer_id)
    target = {"customer_id": s.customer_id} if on == "customer" else {
        "interaction_id": s.interaction_id
    }  # fmt: skip
    hold = await world.repo.add_hold(reason="court order", created_by="9", **target)

    with pytest.raises(LegalHoldActive, match="under legal hold") as caught:
        await world.eraser.erase(s.customer_id, actor=SYSTEM)

    assert caught.value.holds == (hold,)
    assert await world.repo.get(rec_id) is not None
    assert len([k async for k in world.storage.keys()]) == 1
    customer = await s.customers.get(s.customer_id)
    assert customer is not None and customer.name == "Jörg Kunde" and customer.phones
    (row,) = await world.audit.query(action="customers.erase")
    assert row.outcome == "denied" and row.detail == {"reason": "legal_hold", "holds": [hold.id]}

    await world.repo.release_hold(hold.id, released_by="9")
    report = await world.eraser.erase(s.customer_id, actor=SYSTEM)
    assert report.recordings == (rec_id,)


async def test_erase_is_refused_while_a_call_of_theirs_is_being_recorded(world: World) -> None:
    s = world.seeded
    stored = await world.recording(interaction_id=s.interaction_id, customer_id=s.customer_id)
    live = await world.repo.create(
        spool_name="live.wav", interaction_id=s.interaction_id, customer_id=s.customer_id
    )
    assert live.state == "recording"

    with pytest.raises(RecordingInProgress, match="being recorded") as caught:
        await world.eraser.erase(s.customer_id, actor=SYSTEM)

    assert caught.value.recording_ids == (live.id,)
    assert await world.repo.get(stored) is not None and await world.repo.get(live.id) is not None
    customer = await s.customers.get(s.customer_id)
    assert customer is not None and customer.name == "Jörg Kunde"
    (row,) = await world.audit.query(action="customers.erase")
    assert row.outcome == "denied"
    assert row.detail == {"reason": "recording_in_progress", "recordings": [live.id]}

    # The call ends and its file is stored: now the customer can be erased.
    write_tone(world.spool / "live.wav", 0.2)
    await world.repo.mark_ended(live.id, ended_at=T0)
    await Ingestor(world.repo, world.storage, world.spool).finish(live.id)
    report = await world.eraser.erase(s.customer_id, actor=SYSTEM)
    assert set(report.recordings) == {stored, live.id}


async def test_erasing_an_unknown_customer_is_not_found(world: World) -> None:
    with pytest.raises(NotFoundError):
        await world.eraser.erase(999_999, actor=SYSTEM)
    assert await world.audit.query() == []


# -- over HTTP (the runtime, the API token acting as an admin) ---------------------------


async def test_rest_holds_block_erasure_with_409_until_released(stack: Stack) -> None:
    runtime, http, url = stack.runtime, stack.http, stack.runtime.url
    customer = await runtime.customers.create("Grace Hopper", phones=["+15550100099"])

    async with http.post(
        f"{url}/api/legal-holds", json={"customer_id": customer.id, "reason": "subpoena 12"}
    ) as resp:
        assert resp.status == 201
        hold = (await resp.json())["hold"]
    assert hold["active"] and hold["customer_id"] == customer.id

    async with http.post(f"{url}/api/customers/{customer.id}/erase") as resp:
        assert resp.status == 409
        refused = await resp.json()
    assert refused["error"] == "legal_hold" and "release the hold first" in refused["message"]
    assert [h["id"] for h in refused["holds"]] == [hold["id"]]
    kept = await runtime.customers.get(customer.id)
    assert kept is not None and kept.name == "Grace Hopper"

    async with http.get(f"{url}/api/legal-holds?customer_id={customer.id}") as resp:
        assert [h["id"] for h in (await resp.json())["holds"]] == [hold["id"]]
    async with http.post(f"{url}/api/legal-holds/{hold['id']}/release") as resp:
        assert resp.status == 200 and not (await resp.json())["hold"]["active"]
    async with http.get(f"{url}/api/legal-holds?customer_id={customer.id}") as resp:
        assert (await resp.json())["holds"] == []

    async with http.post(f"{url}/api/customers/{customer.id}/erase") as resp:
        assert resp.status == 200
        erased = (await resp.json())["erased"]
    assert erased["customer_id"] == customer.id and erased["phones"] == 1
    gone = await runtime.customers.get(customer.id)
    assert gone is not None and gone.name == ERASED_NAME and gone.phones == ()

    rows = await runtime.audit.query(action="customers.erase")
    assert [(r.outcome, r.actor_role) for r in rows] == [("allowed", "admin"), ("denied", "admin")]
    holds = await runtime.audit.query(action="legal_holds.manage")
    assert [r.detail["op"] for r in holds] == ["release", "add"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("POST", "/api/customers/999999/erase", None, 404, "unknown_customer"),
        ("POST", "/api/customers/abc/erase", None, 400, "invalid_request"),
        ("POST", "/api/legal-holds", {"reason": "x"}, 400, "invalid_request"),
        (
            "POST",
            "/api/legal-holds",
            {"customer_id": 1, "interaction_id": 1, "reason": "x"},
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/api/legal-holds",
            {"customer_id": 999999, "reason": "x"},
            404,
            "unknown_customer",
        ),
        (
            "POST",
            "/api/legal-holds",
            {"interaction_id": 999999, "reason": "x"},
            404,
            "unknown_interaction",
        ),
        ("POST", "/api/legal-holds", {"customer_id": "1", "reason": "x"}, 400, "invalid_request"),
        ("POST", "/api/legal-holds", {"customer_id": 1, "reason": " "}, 400, "invalid_request"),
        (
            "POST",
            "/api/legal-holds",
            {"customer_id": 1, "reason": "x", "until": 1},
            400,
            "invalid_request",
        ),
        ("POST", "/api/legal-holds/999999/release", None, 404, "unknown_hold"),
        ("GET", "/api/legal-holds?customer_id=-1", None, 400, "invalid_request"),
        ("GET", "/api/legal-holds?all=maybe", None, 400, "invalid_request"),
    ],
)
async def test_rest_bad_input_is_refused_and_changes_nothing(
    stack: Stack, method: str, path: str, body: Any, status: int, error: str
) -> None:
    await stack.runtime.customers.create("Someone", phones=["+15550100098"])

    async with stack.http.request(method, stack.runtime.url + path, json=body) as resp:
        answer = await resp.json()
    assert (resp.status, answer["error"]) == (status, error), answer
    assert await stack.runtime.recordings.list_holds(active_only=False) == []
    audited = await stack.runtime.audit.query()
    assert [(e.outcome, e.detail["status"]) for e in audited] == (
        [("failed", status)] if method == "POST" else []
    ), "a refused change is audited as failed; nothing is allowed"
