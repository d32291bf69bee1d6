"""``callwright serve --config FILE`` | ``callwright demo`` | ``callwright db upgrade`` |
``callwright recordings purge [--dry-run]`` | ``callwright recordings check [--repair]`` |
``callwright recordings retention [--apply]`` | ``callwright customers erase <id>``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from callwright.config import Config, ConfigError, load_config

T = TypeVar("T")

log = logging.getLogger("callwright")

DEFAULT_CONFIG = "config.toml"


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve(config: Config) -> None:
    from callwright.runtime import Runtime

    runtime = Runtime(config)
    await runtime.start()
    memory = start_memory_policy(config)
    print(f"Callwright listening on {runtime.url}", flush=True)
    try:
        await _wait_for_signal()
    finally:
        memory.cancel()
        await runtime.stop()


def run_event_loop(main: Coroutine[Any, Any, T], kind: str) -> T:
    """Run a server process's ``main`` on ``[server] event_loop``: uvloop
    (libuv's loop, the default) or Python's own asyncio loop, there for
    debugging (its debug mode) and as a fallback. On the desk benchmark at 50
    calls/s the two are within the run-to-run spread of each other with the
    code as it stands (bench/RESULTS.md, "Third performance round"); in the
    second round, overloaded at 30 calls/s, uvloop's median pop was 1.5 s
    against 2.4 s."""
    if kind == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def start_memory_policy(config: Config) -> asyncio.Task[None]:
    """After start-up, in a server process (not in tests: the collector is
    the whole process's): callwright.memory."""
    from callwright.memory import MemoryPolicy

    policy = MemoryPolicy(config.server.gc_freeze_every, config.server.gc_full_every)
    policy.start(time.monotonic())
    return asyncio.create_task(policy.run(), name="gc-policy")


async def _db_upgrade(config: Config) -> None:
    from store.migrate import upgrade

    await upgrade(config.store.effective_url)
    print("database is at the latest revision", flush=True)


class _CommandFailed(Exception):
    """A command that ran and refused (exit code 1), message for stderr."""


async def _with_recordings(config: Config, job: Callable[..., Awaitable[int]]) -> int:
    """Open the store and the recording services for a one-shot command."""
    from agent_desk.audit import AuditLog
    from recordings.ingest import Ingestor
    from recordings.repository import RecordingRepository
    from recordings.storage import LocalStorage
    from store import make_engine
    from store.migrate import is_up_to_date

    engine = make_engine(config.store.effective_url)
    try:
        if not await is_up_to_date(engine):
            raise _CommandFailed(
                "the database is not at the latest revision: run `callwright db upgrade`"
            )
        rec = config.recordings
        repo = RecordingRepository(engine)
        storage = LocalStorage(rec.dir, rec.key_bytes())
        ingestor = Ingestor(repo, storage, rec.spool_dir, retention_days=rec.retention_days)
        return await job(engine, repo, storage, ingestor, AuditLog(engine))
    finally:
        await engine.dispose()


async def _recordings_purge(config: Config, dry_run: bool) -> int:
    from recordings.retention import Purger

    async def job(engine: Any, repo: Any, storage: Any, ingestor: Any, audit: Any) -> int:
        purger = Purger(repo, storage, audit, retention_days=config.recordings.retention_days)
        report = await purger.run(dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for item in report.purged:
            until = item.deadline.isoformat() if item.deadline else "-"
            print(f"{verb} recording {item.recording_id} (queue {item.queue}, due {until})")
        for error in report.errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"{len(report.purged)} recording(s) {verb}; {report.held} kept by a legal hold")
        return 1 if report.errors else 0

    return await _with_recordings(config, job)


async def _recordings_retention(config: Config, apply: bool) -> int:
    from recordings.retention import SYSTEM, retention_changes

    async def job(engine: Any, repo: Any, storage: Any, ingestor: Any, audit: Any) -> int:
        now = datetime.now(UTC)
        changes = retention_changes(
            await repo.stored_candidates(now=now), config.recordings.retention_days
        )
        verb = "set" if apply else "would set"
        for change in changes:
            rec = change.recording
            old = rec.retain_until.isoformat() if rec.retain_until else "forever"
            new = change.retain_until.isoformat() if change.retain_until else "forever"
            print(f"{verb} recording {rec.id} (queue {rec.queue}) to keep until {new}, was {old}")
            if apply:
                await repo.set_retain_until(rec.id, change.retain_until)
                await audit.record(
                    actor=SYSTEM,
                    action="recordings.retention",
                    outcome="allowed",
                    subject=f"recording:{rec.id}",
                    detail={"queue": rec.queue, "was": old, "now": new},
                )
        print(f"{len(changes)} recording(s): {verb} from the current retention policy")
        return 0

    return await _with_recordings(config, job)


async def _recordings_check(config: Config, repair: bool) -> int:
    from recordings.check import check_recordings

    async def job(engine: Any, repo: Any, storage: Any, ingestor: Any, audit: Any) -> int:
        report = await check_recordings(repo, storage, ingestor, repair=repair)
        for line in report.lines():
            print(line)
        if report.clean:
            print("recordings: storage, spool and rows agree")
            return 0
        if not repair:
            print("run `callwright recordings check --repair` to fix what can be fixed safely")
        return 1 if report.errors or not repair else 0

    return await _with_recordings(config, job)


async def _customers_erase(config: Config, customer_id: int) -> int:
    from recordings.erase import Eraser, LegalHoldActive, RecordingInProgress
    from recordings.retention import SYSTEM
    from store.errors import NotFoundError

    async def job(engine: Any, repo: Any, storage: Any, ingestor: Any, audit: Any) -> int:
        eraser = Eraser(engine, repo, storage, audit, data_dir=config.store.data_dir)
        try:
            report = await eraser.erase(customer_id, actor=SYSTEM)
        except NotFoundError as exc:
            raise _CommandFailed(str(exc)) from None
        except (LegalHoldActive, RecordingInProgress) as exc:
            raise _CommandFailed(str(exc)) from None
        print(f"customer {customer_id} erased:")
        for key, value in report.as_dict().items():
            if key == "recordings":
                print(f"  recordings deleted: {len(value)} {' '.join(value)}".rstrip())
            elif key != "customer_id":
                print(f"  {key.replace('_', ' ')}: {value}")
        return 0

    return await _with_recordings(config, job)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callwright", description="Callwright contact center")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server against a real PBX")
    serve.add_argument("--config", default=DEFAULT_CONFIG, help="path to config.toml")
    demo = sub.add_parser("demo", help="run the server with the PBX simulator and demo data")
    demo.add_argument("--config", default=None, help="optional config.toml (ami is replaced)")
    demo.add_argument("--port", type=int, default=None, help="HTTP port (default: config or 8080)")
    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply the migrations")
    up.add_argument("--config", default=DEFAULT_CONFIG, help="path to config.toml")
    recs = sub.add_parser("recordings", help="recording storage commands")
    recs_sub = recs.add_subparsers(dest="recordings_command", required=True)
    purge = recs_sub.add_parser("purge", help="delete recordings past their retention")
    purge.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    purge.add_argument("--config", default=DEFAULT_CONFIG, help="path to config.toml")
    retention = recs_sub.add_parser(
        "retention", help="keep stored recordings as long as the current policy says"
    )
    retention.add_argument(
        "--apply", action="store_true", help="change them (without it: list the changes)"
    )
    retention.add_argument("--config", default=DEFAULT_CONFIG, help="path to config.toml")
    check = recs_sub.add_parser("check", help="find files without rows and rows without files")
    check.add_argument("--repair", action="store_true", help="fix what can be fixed safely")
    check.add_argument("--config", default=DEFAULT_CONFIG, help="path to config.toml")
    cust = sub.add_parser("customers", help="customer commands")
    cust_sub = cust.add_subparsers(dest="customers_command", required=True)
    erase = cust_sub.add_parser("erase", help="GDPR: erase a customer's personal data")
    erase.add_argument("customer_id", type=int, help="the customer's id")
    erase.add_argument("--config", default=DEFAULT_CONFIG, help="path to config.toml")
    args = parser.parse_args(argv)

    try:
        if args.command == "demo":
            from callwright.demo import demo_config, run_demo

            config = demo_config(Path(args.config) if args.config else None, port=args.port)
            _setup_logging(config.log_level)
            run_event_loop(run_demo(config), config.server.event_loop)
            return 0
        config = load_config(args.config)
        _setup_logging(config.log_level)
        if args.command == "serve":
            run_event_loop(_serve(config), config.server.event_loop)
        elif args.command == "db":
            asyncio.run(_db_upgrade(config))
        elif args.command == "recordings" and args.recordings_command == "purge":
            return asyncio.run(_recordings_purge(config, args.dry_run))
        elif args.command == "recordings" and args.recordings_command == "retention":
            return asyncio.run(_recordings_retention(config, args.apply))
        elif args.command == "recordings":
            return asyncio.run(_recordings_check(config, args.repair))
        elif args.command == "customers":
            return asyncio.run(_customers_erase(config, args.customer_id))
    except ConfigError as exc:
        print(f"callwright: {exc}", file=sys.stderr)
        return 2
    except _CommandFailed as exc:
        print(f"callwright: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
