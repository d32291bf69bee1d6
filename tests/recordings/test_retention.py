"""Retention with a fake clock: per-queue days, legal holds on the interaction or the
customer, and the purge job deleting file and row together, audited."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_desk.audit import AuditLog
from recordings.ingest import Ingestor
from recordings.repository import LegalHold, Recording, RecordingRepository
from recordings.retention import Purger, deadline, due_for_purge, retention_changes
from recordings.storage import LocalStorage
from recordings.wav import write_tone
from tests.recordings.conftest import FakeClock, Seeded

T = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = {"billing": 90, "sales": 30}.get


def rec(
    ident: str,
    *,
    queue: str | None = "billing",
    state: str = "stored",
    interaction: int = 1,
    customer: int | None = 10,
    retain_until: datetime | None = None,
    ended: datetime = T,
) -> Recording:
    return Recording(
        id=ident,
        interaction_id=interaction,
        call_id=None,
        agent_id=None,
        customer_id=customer,
        queue=queue,
        source="asterisk",
        external_id=None,
        state=state,  # type: ignore[arg-type]
        spool_name=None,
        storage_key=None,
        sha256=None,
        size_bytes=None,
        duration_ms=None,
        content_type="audio/wav",
        encrypted=False,
        started_at=ended - timedelta(minutes=5),
        ended_at=ended,
        stored_at=ended,
        retain_until=retain_until,
        created_at=ended,
    )


def hold(
    *, interaction: int | None = None, customer: int | None = None, released: bool = False
) -> LegalHold:
    return LegalHold(
        id=1,
        interaction_id=interaction,
        customer_id=customer,
        reason="litigation",
        created_by="9",
        created_at=T,
        released_at=T if released else None,
        released_by="9" if released else None,
    )


# -- the pure rule ---------------------------------------------------------------------


def test_a_recording_is_due_on_its_retain_until_and_not_a_second_before() -> None:
    r = rec("a", retain_until=T + timedelta(days=90))

    assert due_for_purge([r], [], T + timedelta(days=90) - timedelta(seconds=1), DAYS) == []
    assert due_for_purge([r], [], T + timedelta(days=90), DAYS) == [r]


def test_without_retain_until_the_current_queue_policy_counts_from_the_end() -> None:
    billing, sales, support = rec("b"), rec("s", queue="sales"), rec("x", queue="support")
    rows = [billing, sales, support]

    assert deadline(sales, DAYS) == T + timedelta(days=30)
    assert due_for_purge(rows, [], T + timedelta(days=31), DAYS) == [sales]
    assert due_for_purge(rows, [], T + timedelta(days=91), DAYS) == [billing, sales]
    assert due_for_purge(rows, [], T + timedelta(days=10_000), DAYS) == [billing, sales], (
        "a queue without retention days keeps its recordings"
    )
    assert due_for_purge(rows, [], T + timedelta(days=10_000), None) == []


def test_the_current_policy_is_applied_to_stored_recordings_that_differ_from_it() -> None:
    recordings = [
        rec("same", retain_until=T + timedelta(days=90)),  # billing: 90 days, as stored
        rec("longer", retain_until=T + timedelta(days=365)),  # stored under a longer policy
        rec("forever", queue="support", retain_until=T + timedelta(days=30)),  # no days now
        rec("kept", queue="support"),  # forever, and so stored
        rec("missing", state="missing", retain_until=T),  # not stored: the purge's own rule
    ]
    changes = retention_changes(recordings, DAYS)
    assert [(c.recording.id, c.retain_until) for c in changes] == [
        ("longer", T + timedelta(days=90)),
        ("forever", None),
    ]


def test_recordings_in_progress_are_never_due() -> None:
    rows = [rec(str(i), state=s) for i, s in enumerate(["recording", "paused", "ended"])]

    assert due_for_purge(rows, [], T + timedelta(days=1000), DAYS) == []


def test_a_legal_hold_on_the_interaction_or_the_customer_keeps_the_recording() -> None:
    a = rec("a", interaction=1, customer=10)
    b = rec("b", interaction=2, customer=10)
    c = rec("c", interaction=3, customer=20)
    later = T + timedelta(days=365)

    assert due_for_purge([a, b, c], [hold(interaction=1)], later, DAYS) == [b, c]
    assert due_for_purge([a, b, c], [hold(customer=10)], later, DAYS) == [c]
    assert due_for_purge([a, b, c], [hold(customer=10, released=True)], later, DAYS) == [a, b, c]
    no_customer = replace(c, customer_id=None)
    assert due_for_purge([no_customer], [hold(customer=20)], later, DAYS) == [no_customer]


# -- the purge job ---------------------------------------------------------------------


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store")


async def stored_recording(
    repo: RecordingRepository,
    storage: LocalStorage,
    tmp_path: Path,
    clock: FakeClock,
    *,
    interaction_id: int,
    customer_id: int | None,
    queue: str,
    name: str,
) -> Recording:
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    r = await repo.create(
        interaction_id=interaction_id, customer_id=customer_id, queue=queue, spool_name=name
    )
    write_tone(spool / name, 0.2)
    return await Ingestor(repo, storage, spool, retention_days=DAYS, clock=clock).finish(r.id)


async def test_purge_deletes_due_files_and_rows_and_audits_each(
    seeded: Seeded,
    repo: RecordingRepository,
    storage: LocalStorage,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    audit = AuditLog(seeded.engine, clock=clock)
    other = await seeded.interactions.create(
        channel="voice", direction="inbound", started_at=clock.now, queue="sales"
    )
    kept_customer = await stored_recording(
        repo, storage, tmp_path, clock, interaction_id=seeded.interaction_id,
        customer_id=seeded.customer_id, queue="billing", name="a.wav",
    )  # fmt: skip
    sales = await stored_recording(
        repo, storage, tmp_path, clock, interaction_id=other.id,
        customer_id=None, queue="sales", name="b.wav",
    )  # fmt: skip
    billing = await stored_recording(
        repo, storage, tmp_path, clock, interaction_id=other.id,
        customer_id=None, queue="billing", name="c.wav",
    )  # fmt: skip
    await repo.add_hold(reason="dispute", customer_id=seeded.customer_id, created_by="9")
    purger = Purger(repo, storage, audit, retention_days=DAYS, clock=clock)

    clock.advance(29 * 86400)
    assert (await purger.run()).purged == ()

    clock.advance(86400)
    preview = await purger.run(dry_run=True)
    assert [p.recording_id for p in preview.purged] == [sales.id]
    assert await repo.get(sales.id) is not None and await storage.exists(sales.storage_key or "")
    assert await audit.query(action="recordings.purge") == []

    report = await purger.run()
    assert [(p.recording_id, p.file_deleted) for p in report.purged] == [(sales.id, True)]
    assert await repo.get(sales.id) is None
    assert not await storage.exists(sales.storage_key or "")
    (row,) = await audit.query(action="recordings.purge")
    assert (row.actor_id, row.actor_role, row.outcome) == ("system", "system", "allowed")
    assert row.subject == f"recording:{sales.id}" and row.at == clock.now
    assert row.detail["storage_key"] == sales.storage_key

    clock.advance(61 * 86400)
    report = await purger.run()
    assert [p.recording_id for p in report.purged] == [billing.id]
    assert report.held == 1, "the customer's recording is due but on hold"
    assert await repo.get(kept_customer.id) is not None
    assert await storage.exists(kept_customer.storage_key or "")
    assert [k async for k in storage.keys()] == [kept_customer.storage_key]

    (active,) = await repo.list_holds(customer_id=seeded.customer_id)
    await repo.release_hold(active.id, released_by="9")
    report = await purger.run()
    assert [p.recording_id for p in report.purged] == [kept_customer.id]
    assert [k async for k in storage.keys()] == []
    assert len(await audit.query(action="recordings.purge")) == 3


async def test_a_row_whose_file_is_already_gone_is_still_purged(
    seeded: Seeded,
    repo: RecordingRepository,
    storage: LocalStorage,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    r = await stored_recording(
        repo, storage, tmp_path, clock, interaction_id=seeded.interaction_id,
        customer_id=None, queue="sales", name="a.wav",
    )  # fmt: skip
    await storage.delete(r.storage_key or "")  # a crash after the file, before the row
    clock.advance(31 * 86400)

    report = await Purger(
        repo, storage, AuditLog(seeded.engine), retention_days=DAYS, clock=clock
    ).run()

    assert [(p.recording_id, p.file_deleted) for p in report.purged] == [(r.id, False)]
    assert await repo.get(r.id) is None
