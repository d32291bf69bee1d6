"""``callwright serve --config FILE`` | ``callwright demo`` | ``callwright db upgrade``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from callwright.config import Config, ConfigError, load_config

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
    print(f"Callwright listening on {runtime.url}", flush=True)
    try:
        await _wait_for_signal()
    finally:
        await runtime.stop()


async def _db_upgrade(config: Config) -> None:
    from store.migrate import upgrade

    await upgrade(config.store.effective_url)
    print("database is at the latest revision", flush=True)


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
    args = parser.parse_args(argv)

    try:
        if args.command == "demo":
            from callwright.demo import demo_config, run_demo

            config = demo_config(Path(args.config) if args.config else None, port=args.port)
            _setup_logging(config.log_level)
            asyncio.run(run_demo(config))
            return 0
        config = load_config(args.config)
        _setup_logging(config.log_level)
        if args.command == "serve":
            asyncio.run(_serve(config))
        elif args.command == "db":
            asyncio.run(_db_upgrade(config))
    except ConfigError as exc:
        print(f"callwright: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
