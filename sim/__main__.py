"""Run a standalone PBX simulator for manual tests:

    python -m sim --port 5038 --rate 0.5 --hold 60

then point Callwright (or ``telnet 127.0.0.1 5038``) at it and log in as
``callwright`` / ``callwright-secret``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from sim.load import CallLoad
from sim.pbx.model import ALL_CLASSES, AmiUser
from sim.pbx.server import DEFAULT_USERS, PbxSimulator


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim", description="Simulated Asterisk 22 (AMI).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5038)
    p.add_argument("--rate", type=float, default=0.0, help="inbound calls per second (0: none)")
    p.add_argument("--hold", type=float, default=None, help="customers hang up after N seconds")
    p.add_argument("--did", default="5000", help="the number customers call")
    p.add_argument("--agents", default="1001,1002,1003", help="agent PJSIP endpoints")
    p.add_argument("--answer-delay", type=float, default=1.0, help="seconds before a phone answers")
    p.add_argument("--agi-url", default=None, help="inbound calls run AGI(url) first")
    p.add_argument("--dialplan", choices=("callwright", "lab"), default="callwright")
    p.add_argument(
        "--spool-dir", default=None, help="Asterisk's spool dir: MixMonitor writes monitor/*.wav"
    )
    p.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:SECRET",
        help="an extra AMI user with every class (repeatable)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


async def _main(args: argparse.Namespace) -> None:
    users = dict(DEFAULT_USERS)
    for spec in args.user:
        name, _, secret = spec.partition(":")
        users[name] = AmiUser(secret, ALL_CLASSES, ALL_CLASSES)
    sim = PbxSimulator(
        users=users,
        agent_devices=[a for a in args.agents.split(",") if a],
        answer_delay=args.answer_delay,
        agi_url=args.agi_url,
        dialplan=args.dialplan,
        spool_dir=args.spool_dir,
    )
    await sim.start(args.host, args.port)
    print(
        f"PBX simulator on {sim.host}:{sim.port} (user callwright / callwright-secret)", flush=True
    )
    load = CallLoad(sim, args.rate, hold_seconds=args.hold, did=args.did) if args.rate > 0 else None
    if load is not None:
        load.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if load is not None:
            await load.stop()
        await sim.stop()


def main() -> None:
    args = _parser().parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
