"""Desk benchmark: screen-pop latency at 1,000 connected agents and 50 new
calls a second, and the fan-out of one wallboard update to 1,000 connected
supervisors, over real sockets, with two peers measured in the same run.

    python -m bench.bench_desk [--agents N] [--supervisors S] [--rate R] [--seconds T]
                               [--workers W] [--modes push,lookup,poll] [--fanout K]
                               [--postgres] [--profile FILE] [--json]

Three kinds of process, talking over loopback TCP only:

* this process: a real ``callwright.runtime.Runtime`` (aiohttp, Socket.IO
  ``/desk``, routing, the store: SQLite in a temp directory, or a fresh
  PostgreSQL database on 127.0.0.1 with ``--postgres``) and the driver;
* one simulator process: ``sim.pbx.server.PbxSimulator`` (real AMI over TCP,
  one PJSIP endpoint per agent, auto-answering) placing ``R`` inbound calls a
  second for ``T`` seconds; each caller hangs up ``--hold`` seconds after
  reaching the holding point (about offer + accept + ring + talk), and the
  queue's wrap-up (``--wrap-up``) then frees the agent by itself;
* ``W`` client worker processes, each holding its share of the ``N`` agents
  (and later ``S`` supervisors) as python-socketio ``AsyncClient``s on
  websockets, authenticated with session tokens. Clients live outside the
  server's process so the client side does not take the server's CPU time,
  and in more than one process so 1,000 clients' Python does not delay the
  measured one (they still share the machine's cores with the server).

Latency of a screen-pop: from ``time.time_ns()`` in the simulator process just
before it writes the AMI event that leads to the offer (the first ``Newexten``
that puts the caller's channel in ``callwright-hold``: the call service then
sees a caller alone at the holding point and voice routing creates the task)
to ``time.time_ns()`` in the worker when the agent's client has the ``offer``
event carrying the customer record. Both ends read CLOCK_REALTIME on the same
machine (``perf_counter`` is not comparable across processes).

Modes (phases, one after the other, same server, same agents, same load):

* ``push`` (Callwright): the offer carries the pop (customer, recent
  interactions); the client accepts over Socket.IO.
* ``lookup`` (peer: lookup after the offer, as a desk whose offer or ring
  carries only the caller's number and which then asks the CRM): the client
  ignores the pop, sends ``search_customers`` with the caller's number on the
  same socket and has the record when the ack arrives (it gets the customer
  only, no recent interactions: less than the push, which flatters the peer).
* ``poll`` (peer: a desk that polls every second, as VICIdial's agent screen
  does): every agent polls ``GET /api/agents/{id}`` once a second (each at its
  own phase); when a reservation shows up it accepts it over REST
  (``POST /api/reservations/{id}/accept``, which names the task), reads the
  task (``GET /api/tasks/{id}``: the caller's number) and looks the customer
  up (``search_customers``). Offers pushed on the socket are ignored.

Each phase also reports the machine's steal time (/proc/stat): the share of
the CPU the hypervisor gave to other guests while this one had work; and the
report's header, the machine's speed at plain Python (``reference_loop_ms``).
The same code's numbers differ between runs made on shared machines of the
same name (bench/RESULTS.md, "Fifth round"): these say what a run had.

Fan-out: ``S`` supervisor clients (in the ``supervisors`` room); ``K`` times,
one agent's state changes (a wallboard row), and each client's receipt time
is compared with the envelope's ``at`` (the server's ``time.time()`` when the
update was published, just before the room emit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime
import gc
import inspect
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import platform
import pstats
import random
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import socketio  # type: ignore[import-untyped]

__all__ = ["Latencies", "Settings", "main", "percentile", "run"]

log = logging.getLogger(__name__)

TARGET_P99_MS = 10.0
NS = "/desk"
HOLD_CONTEXT = "callwright-hold"
QUEUE_ID = "support"
MODES = ("push", "lookup", "poll")
PEER_LABELS = {
    "push": "Callwright push (pop in the offer)",
    "lookup": "peer: lookup after the offer",
    "poll": "peer: 1 s REST poll + lookup",
}
PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Settings:
    agents: int = 1000
    supervisors: int = 1000
    rate: float = 50.0
    seconds: float = 30.0
    hold: float = 8.0
    wrap_up: float = 2.0
    answer_delay: float = 0.2
    workers: int = 2
    modes: tuple[str, ...] = MODES
    fanout: int = 20
    fanout_gap: float = 1.0
    poll_interval: float = 1.0
    customers: int = 0  # 0: one per call of a phase (rate * seconds)
    history: int = 2  # earlier interactions per customer (shown in the pop)
    postgres: bool = False
    profile: str | None = None  # cProfile of this process during the push phase
    trace: bool = False
    agent_rooms: str = "all"  # "own": what-if, agents not in the queue rooms
    sqlite_sync: str = ""  # what-if: PRAGMA synchronous for the runtime's SQLite connections
    gc_freeze_every: float = 60.0  # [server] gc_freeze_every; 0: what-if, the collector as is
    event_loop: str = "uvloop"  # [server] event_loop of this (the server's) process
    load_sched: str = "normal"  # the simulator's and the clients' scheduling policy (_as_load)
    load_gc: str = "paused"  # the load's collector in a phase (_pause_collector)
    seed: int = 2026

    @property
    def calls(self) -> int:
        return round(self.rate * self.seconds)

    @property
    def n_customers(self) -> int:
        return self.customers or self.calls


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100)
    return ordered[min(len(ordered), int(rank)) - 1]


@dataclass
class Latencies:
    label: str
    ms: list[float] = field(default_factory=list)
    expected: int = 0
    missing: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "count": len(self.ms),
            "expected": self.expected,
            "missing": self.missing,
            "p50_ms": percentile(self.ms, 50),
            "p90_ms": percentile(self.ms, 90),
            "p99_ms": percentile(self.ms, 99),
            "max_ms": max(self.ms, default=float("nan")),
            **self.extra,
        }


# -- the simulator process ----------------------------------------------------


def _as_load(policy: str) -> None:
    """The load generators (the simulator, the client workers) share the
    machine's two cores with the server they measure; in a contact center
    they are the PBX and a thousand agents' PCs, other machines. ``batch``
    runs them under Linux's SCHED_BATCH: the same share of the CPU as any
    process, but a load generator woken by a message does not preempt the
    server in the middle of its work, as an ordinary process just woken
    usually does; it takes its turn at the next tick instead, so its own
    delays count against the measured latency. ``normal`` (the default):
    the system's default policy. In alternate runs the two did not differ
    beyond the machine's own spread (bench/RESULTS.md, "Fifth round")."""
    if policy == "batch":
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def _pause_collector() -> None:
    """In a load generator (the simulator, a client worker), for a measured
    phase: what setup made is frozen and Python's cyclic collector stops
    until ``_resume_collector``.

    Why: the load stands in for Asterisk (C, no collector) and a thousand
    agents' browsers, each on its own PC; here they are three Python processes
    on the server's two cores. The simulator's collections took 17-100 ms at a
    time: a pause between stamping an event and writing it counted as the
    server's latency, and its events then arrived in a burst. With only the
    simulator's collector paused, the slowest pops still followed a 43 ms step
    of the server with 5 ms of CPU: it was off its core, and the client
    workers (500 connections each; their collections were not timed) were the
    other processes still collecting. With theirs paused too, that run's p99
    was 9.5 ms, against 24.3 and 64.8 ms (bench/RESULTS.md, "Sixth round").
    ``--load-gc running`` keeps them collecting, as before. The server's own
    collector is never touched here: it runs its MemoryPolicy as `callwright
    serve` does."""
    gc.collect()
    gc.freeze()
    gc.disable()


def _resume_collector() -> None:
    gc.unfreeze()
    gc.enable()


def _sim_process(
    conn: multiprocessing.connection.Connection, exts: list[str], delay: float, policy: str
) -> None:
    _as_load(policy)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_sim_main(conn, exts, delay))


async def _sim_main(
    conn: multiprocessing.connection.Connection, exts: list[str], delay: float
) -> None:
    from sim.pbx.server import PbxSimulator

    sim = PbxSimulator(agent_devices=exts, answer_delay=delay, login_failure_delay=0)
    # linkedid -> (ns when the event was about to be written, caller number)
    triggers: dict[str, tuple[int, str]] = {}
    emit = sim.pbx._emit

    def stamping(name: str, cls: str, headers: list[tuple[str, str]]) -> None:
        # The event that makes the call service see a caller alone at the
        # holding point: the first step of the holding context.
        if name == "Newexten":
            h = dict(headers)
            linkedid = h.get("Linkedid", "")
            if (
                h.get("Context") == HOLD_CONTEXT
                and h.get("Channel", "").startswith("PJSIP/trunk-")
                and linkedid not in triggers
            ):
                triggers[linkedid] = (time.time_ns(), h.get("CallerIDNum", ""))
        emit(name, cls, headers)

    sim.pbx._emit = stamping
    await sim.start()
    loop = asyncio.get_running_loop()
    conn.send(sim.port)
    try:
        while True:
            command, args = await loop.run_in_executor(None, conn.recv)
            if command == "stop":
                break
            if command == "drive":
                triggers.clear()
                paused = args.pop("pause_gc", False)
                if paused:
                    _pause_collector()
                cpu = _cpu_total()
                try:
                    counts = await _drive(sim, **args)
                finally:
                    if paused:
                        _resume_collector()
                cpu = _cpu_total() - cpu
                conn.send({"triggers": dict(triggers), "cpu_seconds": cpu, **counts})
    finally:
        await sim.stop()
        conn.close()


async def _drive(
    sim: Any, rate: float, calls: int, hold: float, numbers: list[str]
) -> dict[str, int]:
    """``calls`` inbound calls at ``rate`` a second; each caller hangs up
    ``hold`` seconds after reaching the holding point. Returns when every call
    has ended. (sim.load.CallLoad places calls the same way, but its stop()
    either leaves the calls up or hangs them all up at once; a benchmark needs
    the calls placed last to live out their hold time like the others.)"""
    loop = asyncio.get_running_loop()
    counts = {"placed": 0, "reached_hold": 0, "hung_up": 0, "failed": 0}

    async def one(number: str) -> None:
        try:
            ch = await sim.inbound_call(number, f"Caller {number[-4:]}", "5000")
        except Exception:
            counts["failed"] += 1
            log.exception("call from %s failed", number)
            return
        if ch.hungup:
            counts["failed"] += 1
            return
        counts["reached_hold"] += 1
        await asyncio.sleep(hold)
        if not ch.hungup:
            with contextlib.suppress(LookupError):
                await sim.customer_hangup(ch.name)
                counts["hung_up"] += 1

    tasks = []
    start = loop.time()
    for n in range(calls):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(numbers[n % len(numbers)])))
        counts["placed"] += 1
    await asyncio.gather(*tasks)
    return counts


def _machine_ticks() -> tuple[int, int]:
    """(steal, total) CPU ticks of the whole machine so far (/proc/stat):
    steal is the time the hypervisor ran something else while this virtual
    machine had work. (0, 0) where /proc/stat is not there."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            return _steal_and_total(f.readline())
    except OSError:
        return 0, 0


def _steal_and_total(cpu_line: str) -> tuple[int, int]:
    """/proc/stat's first line: ``cpu user nice system idle iowait irq softirq
    steal [guest guest_nice]`` (guest time is already counted in user)."""
    ticks = [int(v) for v in cpu_line.split()[1:9]]
    return ticks[7], sum(ticks)


def _cpu_total() -> float:
    """CPU seconds (user + system) this process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return float(usage.ru_utime + usage.ru_stime)


# -- the client worker processes ------------------------------------------------


def _worker_process(conn: multiprocessing.connection.Connection, url: str, seed: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_Worker(conn, url, seed).run())


class _Worker:
    def __init__(self, conn: multiprocessing.connection.Connection, url: str, seed: int) -> None:
        self.conn = conn
        self.url = url
        self.rng = random.Random(seed)
        self.mode = "idle"
        self.agents: list[_AgentDesk] = []
        self.supervisors: list[socketio.AsyncClient] = []
        self.records: list[dict[str, Any]] = []
        self.deliveries: list[tuple[int, float, int]] = []  # (seq, at, ns received)
        self.errors: list[str] = []
        self.pollers: list[asyncio.Task[None]] = []
        self.background: set[asyncio.Task[Any]] = set()
        self.session: aiohttp.ClientSession | None = None
        self.collector_paused = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # One HTTP session (connection pool) for every client of this worker.
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        try:
            while True:
                command, args = await loop.run_in_executor(None, self.conn.recv)
                if command == "stop":
                    break
                handler: Callable[..., Awaitable[Any]] = getattr(self, f"_do_{command}")
                reply = await handler(**args)
                self.conn.send({"reply": reply, "cpu_total": _cpu_total()})
        finally:
            for task in self.pollers:
                task.cancel()
            clients = [a.sio for a in self.agents] + self.supervisors
            await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
            await self.session.close()
            self.conn.close()

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def client(self) -> socketio.AsyncClient:
        return socketio.AsyncClient(
            reconnection=False, http_session=self.session, handle_sigint=False
        )

    async def _connect_all(self, connects: list[Callable[[], Awaitable[None]]]) -> int:
        gate = asyncio.Semaphore(25)
        ok = 0

        async def one(connect: Callable[[], Awaitable[None]]) -> None:
            nonlocal ok
            async with gate:
                try:
                    await connect()
                    ok += 1
                except Exception as exc:
                    self.errors.append(f"connect: {exc!r}")

        await asyncio.gather(*(one(c) for c in connects))
        return ok

    async def _do_agents(self, agents: list[tuple[str, str]]) -> dict[str, Any]:
        self.agents = [_AgentDesk(self, agent_id, token) for agent_id, token in agents]
        connected = await self._connect_all([a.connect for a in self.agents])
        return {"connected": connected, "errors": self.errors[-5:]}

    async def _do_mode(self, mode: str, pause_gc: bool = False) -> dict[str, Any]:
        for task in self.pollers:
            task.cancel()
        self.pollers = []
        self.mode = mode
        if mode == "poll":
            self.pollers = [asyncio.ensure_future(a.poll()) for a in self.agents]
        if pause_gc and mode != "idle":  # until the phase's records are collected
            _pause_collector()
            self.collector_paused = True
        return {"mode": mode}

    async def _do_collect(self) -> dict[str, Any]:
        if self.background:
            await asyncio.wait(list(self.background), timeout=10)
        if self.collector_paused:
            _resume_collector()
            self.collector_paused = False
        records, self.records = self.records, []
        errors, self.errors = self.errors, []
        return {"records": records, "errors": errors}

    async def _do_supervisors(self, tokens: list[str]) -> dict[str, Any]:
        def make(token: str) -> Callable[[], Awaitable[None]]:
            sio = self.client()

            def on_state(envelope: dict[str, Any]) -> None:
                received = time.time_ns()
                self.deliveries.append((envelope["seq"], envelope["at"], received))

            sio.on("agent_state", on_state, namespace=NS)
            self.supervisors.append(sio)

            async def connect() -> None:
                await sio.connect(
                    self.url,
                    auth={"token": token},
                    namespaces=[NS],
                    transports=["websocket"],
                    wait_timeout=60,
                )

            return connect

        connected = await self._connect_all([make(t) for t in tokens])
        return {"connected": connected, "errors": self.errors[-5:]}

    async def _do_deliveries(self) -> dict[str, Any]:
        deliveries, self.deliveries = self.deliveries, []
        return {"deliveries": deliveries}


class _AgentDesk:
    """One agent's desk: a Socket.IO client, and in ``poll`` mode a REST poller."""

    def __init__(self, worker: _Worker, agent_id: str, token: str) -> None:
        self.worker = worker
        self.agent_id = agent_id
        self.token = token
        self.sio = worker.client()
        self.sio.on("offer", self._on_offer, namespace=NS)
        self.seen: set[str] = set()

    async def connect(self) -> None:
        await self.sio.connect(
            self.worker.url,
            auth={"token": self.token},
            namespaces=[NS],
            transports=["websocket"],
            wait_timeout=60,
        )
        ack = await self.sio.call("set_state", {"state": "available"}, namespace=NS, timeout=60)
        if not ack.get("ok"):
            raise RuntimeError(f"set_state refused: {ack}")

    def _on_offer(self, envelope: dict[str, Any]) -> None:
        received = time.time_ns()
        worker = self.worker
        offer = envelope["data"]
        if worker.mode == "poll" or offer.get("reoffer"):
            return
        pop = offer.get("pop") or {}
        record = {
            "mode": worker.mode,
            "agent_id": self.agent_id,
            "call_id": pop.get("call_id"),
            "caller": offer.get("attributes", {}).get("caller_number"),
            "offered_ns": received,
            "record_ns": received,
            "customer_id": (pop.get("customer") or {}).get("id"),
            "recent": len(pop.get("recent_interactions") or []),
        }
        if worker.mode == "lookup":
            record["customer_id"] = None
            worker.spawn(self._lookup_then_accept(record, offer["reservation_id"]))
        else:
            worker.records.append(record)
            worker.spawn(self._accept(offer["reservation_id"]))

    async def _accept(self, reservation_id: str) -> None:
        try:
            ack = await self.sio.call(
                "accept", {"reservation_id": reservation_id}, namespace=NS, timeout=30
            )
            if not ack.get("ok"):
                self.worker.errors.append(f"accept: {ack}")
        except Exception as exc:
            self.worker.errors.append(f"accept: {exc!r}")

    async def _search(self, number: str) -> int | None:
        ack = await self.sio.call(
            "search_customers", {"text": number, "limit": 5}, namespace=NS, timeout=30
        )
        for customer in ack.get("customers", []):
            if number in customer.get("phones", []):
                return int(customer["id"])
        return None

    async def _lookup_then_accept(self, record: dict[str, Any], reservation_id: str) -> None:
        try:
            record["customer_id"] = await self._search(record["caller"])
            record["record_ns"] = time.time_ns()
            self.worker.records.append(record)
        except Exception as exc:
            self.worker.errors.append(f"lookup: {exc!r}")
        await self._accept(reservation_id)

    async def poll(self) -> None:
        worker = self.worker
        assert worker.session is not None
        http = worker.session
        headers = {"Authorization": f"Bearer {self.token}"}
        base = worker.url
        interval = POLL_INTERVAL[0]
        loop = asyncio.get_running_loop()
        start = loop.time() + worker.rng.random() * interval
        tick = 0
        while True:
            delay = start + tick * interval - loop.time()
            tick += 1
            if delay > 0:
                await asyncio.sleep(delay)
            else:  # a poll that took longer than the interval: skip the ticks missed
                tick = int((loop.time() - start) / interval) + 1
            try:
                async with http.get(f"{base}/api/agents/{self.agent_id}", headers=headers) as r:
                    view = await r.json()
                seen_ns = time.time_ns()
                for rid in view.get("reservation_ids", []):
                    if rid in self.seen:
                        continue
                    self.seen.add(rid)
                    url = f"{base}/api/reservations/{rid}/accept"
                    async with http.post(url, headers=headers) as r:
                        reservation = await r.json()
                    task_id = reservation["task_id"]
                    async with http.get(f"{base}/api/tasks/{task_id}", headers=headers) as r:
                        task = await r.json()
                    caller = task.get("attributes", {}).get("caller_number")
                    customer_id = await self._search(caller) if caller else None
                    worker.records.append(
                        {
                            "mode": "poll",
                            "agent_id": self.agent_id,
                            "call_id": None,
                            "caller": caller,
                            "offered_ns": seen_ns,
                            "record_ns": time.time_ns(),
                            "customer_id": customer_id,
                            "recent": 0,
                        }
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                worker.errors.append(f"poll: {exc!r}")


# Set in each worker from the settings (the poller reads it).
POLL_INTERVAL = [1.0]


def _worker_entry(
    conn: multiprocessing.connection.Connection,
    url: str,
    seed: int,
    interval: float,
    policy: str,
) -> None:
    _as_load(policy)
    POLL_INTERVAL[0] = interval
    _worker_process(conn, url, seed)


# -- where the time goes (--trace) ------------------------------------------------


class _Tracer:
    """Wall time of each stage of the call path, measured by wrapping the
    runtime's call-event subscribers, routing listeners and store writes
    (instrumentation of this benchmark only; the product code is unchanged).
    Stages overlap: a subscriber's time includes the store writes it awaits."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.backlog: list[int] = []
        self._sampler: asyncio.Task[None] | None = None

    def _add(self, name: str, seconds: float) -> None:
        self.samples.setdefault(name, []).append(seconds)

    def _timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return result
            finally:
                self._add(name, time.perf_counter() - start)

        return timed

    def _timed_now(self, name: str, fn: Callable[..., bool]) -> Callable[..., bool]:
        def timed(*args: Any, **kwargs: Any) -> bool:
            start = time.perf_counter()
            done = fn(*args, **kwargs)
            if done:  # else it is written (and timed) the usual way
                self._add(name, time.perf_counter() - start)
            return done

        return timed

    def install(self, runtime: Any) -> None:
        calls = runtime.calls
        calls._subscribers = [
            self._timed(f"call event -> {_name(f)}", f) for f in calls._subscribers
        ]
        routing = runtime.routing
        routing._listeners = [
            self._timed(f"routing events -> {_name(f)}", f) for f in routing._listeners
        ]
        for obj, method, label in (
            (runtime.call_writer, "store", "store: call record store (until its batch commits)"),
            (runtime.call_records, "upsert_many", "store: call record upsert_many (one batch)"),
            (routing.journal, "write", "store: routing journal write"),
        ):
            setattr(obj, method, self._timed(label, getattr(obj, method)))
        # Written at once, in the caller (store.group_commit's write_now).
        for obj, method, label in (
            (runtime.call_records, "upsert_many_now", "store: call record upsert_many (one batch)"),
            (routing.journal, "write_now", "store: routing journal write"),
        ):
            setattr(obj, method, self._timed_now(label, getattr(obj, method)))

        async def sample() -> None:
            while True:
                self.backlog.append(calls.backlog())
                await asyncio.sleep(0.25)

        self._sampler = asyncio.ensure_future(sample())

    def report(self) -> dict[str, Any]:
        if self._sampler is not None:
            self._sampler.cancel()
        stages = []
        for name, values in sorted(self.samples.items()):
            ms = [v * 1000 for v in values]
            stages.append(
                {
                    "stage": name,
                    "count": len(ms),
                    "mean_ms": sum(ms) / len(ms),
                    "p50_ms": percentile(ms, 50),
                    "p99_ms": percentile(ms, 99),
                    "total_s": sum(values),
                }
            )
        return {"stages": stages, "max_call_event_backlog": max(self.backlog, default=0)}


def _name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or type(fn).__name__)


def _agents_in_own_room_only(runtime: Any) -> None:
    """What-if (--agent-rooms own): agents enter only ``agent:{id}``, not the
    queue rooms, so a task change is not sent to every agent of the queue.
    Not the product's contract (agent_desk/EVENTS.md): a measurement of its cost."""
    notifier = runtime.desk.notifier
    rooms_for = notifier.rooms_for

    def own_room_only(agent_id: str | None, supervisor: bool) -> list[str]:
        rooms: list[str] = rooms_for(agent_id, supervisor)
        return rooms if supervisor else rooms[:1]

    notifier.rooms_for = own_room_only


def _sqlite_synchronous(engine: Any, mode: str) -> None:
    """What-if (--sqlite-sync normal): the runtime's SQLite connections with
    ``PRAGMA synchronous`` set (the default, FULL, syncs the WAL at every
    commit; NORMAL syncs at checkpoints: a commit can be lost by a power cut,
    not by a crash of the process). Not what the product does."""
    from sqlalchemy import event

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA synchronous={mode}")
        finally:
            cursor.close()

    event.listen(engine.sync_engine, "connect", on_connect)


# -- the driver (this process: the server) ---------------------------------------


class _Remote:
    """A child process and its command pipe."""

    def __init__(self, process: Any, conn: multiprocessing.connection.Connection) -> None:
        self.process = process
        self.conn = conn

    async def call(self, command: str, **args: Any) -> Any:
        self.conn.send((command, args))
        return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(("stop", {}))
        await asyncio.get_running_loop().run_in_executor(None, self.process.join, 30)
        if self.process.is_alive():
            self.process.terminate()


def _start(ctx: Any, target: Callable[..., None], *args: Any) -> _Remote:
    parent, child = ctx.Pipe()
    process = ctx.Process(target=target, args=(child, *args), daemon=True)
    process.start()
    child.close()
    return _Remote(process, parent)


def _number(i: int) -> str:
    return f"+1555{2000000 + i:07d}"


async def _seed(url: str, settings: Settings) -> tuple[list[str], list[str], dict[str, int]]:
    """Agents (extensions 1001...), supervisors and customers with history.
    Returns agent ids, supervisor ids and the customer id of each number."""
    from crm.repository import CustomerRepository, InteractionRepository
    from routing.persistence import AgentRepository
    from store import make_engine
    from store.migrate import upgrade

    await upgrade(url)
    engine = make_engine(url)
    try:
        agents_repo = AgentRepository(engine)
        agent_ids = []
        for i in range(settings.agents):
            agent = await agents_repo.create(
                f"agent{i}",
                f"Agent {i}",
                str(1001 + i),
                skills={"support": 5},
                capacity={"voice": 1},
            )
            agent_ids.append(str(agent.id))
        supervisor_ids = []
        for i in range(settings.supervisors):
            sup = await agents_repo.create(
                f"sup{i}", f"Supervisor {i}", str(9_000_001 + i), role="supervisor"
            )
            supervisor_ids.append(str(sup.id))
        customers = CustomerRepository(engine)
        interactions = InteractionRepository(engine)
        by_number: dict[str, int] = {}
        rng = random.Random(settings.seed)
        now = datetime.datetime.now(UTC)
        n = settings.n_customers
        for i in range(n):
            # One number per phase: a late offer from an earlier phase's call is
            # never taken for this phase's (the poll matches by number).
            numbers = [_number(k * n + i) for k in range(max(1, len(settings.modes)))]
            customer = await customers.create(
                f"Customer {i}",
                phones=numbers,
                emails=[f"customer{i}@example.com"],
                account_number=f"AC-{i:06d}",
                notes="Prefers a call back in the afternoon" if i % 3 == 0 else None,
            )
            by_number.update(dict.fromkeys(numbers, customer.id))
            for h in range(settings.history):
                await interactions.create(
                    channel="voice",
                    direction="inbound",
                    customer_id=customer.id,
                    queue=QUEUE_ID,
                    started_at=now - timedelta(days=rng.randint(1, 300), minutes=h),
                    disposition=rng.choice(["resolved", "follow_up", "escalated"]),
                    notes=f"Earlier call {h}: invoice {rng.randint(1, 9999)}",
                )
    finally:
        await engine.dispose()
    return agent_ids, supervisor_ids, by_number


def _config(sim_port: int, data_dir: Path, url: str, settings: Settings) -> Any:
    from callwright.config import (
        AmiConfig,
        ApiConfig,
        Config,
        RoutingConfig,
        Secret,
        ServerConfig,
        StoreConfig,
    )
    from routing.model import QueueConfig

    queue = QueueConfig(
        id=QUEUE_ID,
        target='"support" in agent.skills',
        reservation_timeout_seconds=30.0,
        wrap_up_seconds=settings.wrap_up,
        service_level_seconds=20.0,
    )
    return Config(
        server=ServerConfig(host="127.0.0.1", port=0),
        store=StoreConfig(url=url, data_dir=data_dir),
        ami=AmiConfig(
            host="127.0.0.1",
            port=sim_port,
            username="callwright",
            secret=Secret("callwright-secret"),
            reconnect_min=0.05,
            reconnect_max=0.5,
        ),
        api=ApiConfig(token=Secret(""), signing_key=Secret(secrets.token_hex(32))),
        routing=RoutingConfig(queues=(queue,), voice_queue=QUEUE_ID),
        log_level="WARNING",
    )


async def _settle(runtime: Any, agent_ids: Sequence[str], timeout: float = 180.0) -> bool:
    """Wait until every agent is available again (calls ended, wrap-up over)."""
    from routing.model import AgentState

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(runtime.calls.drain(), timeout)
    router = runtime.routing.router
    while loop.time() < deadline:
        if all(router.agent(a).state is AgentState.AVAILABLE for a in agent_ids):
            return True
        await asyncio.sleep(0.2)
    return False


async def _pop_phase(
    mode: str,
    settings: Settings,
    sim: _Remote,
    workers: list[_Remote],
    numbers: list[str],
    by_number: dict[str, int],
    profiler: cProfile.Profile | None,
) -> Latencies:
    worker_cpu = 0.0
    pause_gc = settings.load_gc == "paused"
    for w in workers:
        worker_cpu -= (await w.call("mode", mode=mode, pause_gc=pause_gc))["cpu_total"]
    server_cpu = _cpu_total()
    steal, ticks = _machine_ticks()
    if profiler is not None:
        profiler.enable()
    started = time.monotonic()
    driven = await sim.call(
        "drive",
        rate=settings.rate,
        calls=settings.calls,
        hold=settings.hold,
        numbers=numbers,
        pause_gc=pause_gc,
    )
    wall = time.monotonic() - started
    if profiler is not None:
        profiler.disable()
    server_cpu = _cpu_total() - server_cpu
    steal_end, ticks_end = _machine_ticks()
    steal_pct = 100 * (steal_end - steal) / max(1, ticks_end - ticks)
    records: list[dict[str, Any]] = []
    errors: list[str] = []
    for w in workers:
        reply = await w.call("collect")
        records += reply["reply"]["records"]
        errors += reply["reply"]["errors"]
        worker_cpu += reply["cpu_total"]
    triggers: dict[str, tuple[int, str]] = driven["triggers"]
    # push/lookup: the pop names its call; poll: the caller's number (unique in a phase).
    key = "caller" if mode == "poll" else "call_id"
    first: dict[str, dict[str, Any]] = {}
    for rec in sorted(records, key=lambda r: r["record_ns"]):
        first.setdefault(str(rec[key]), rec)
    result = Latencies(PEER_LABELS[mode], expected=len(triggers))
    to_offer: list[float] = []
    wrong = no_record = 0
    for linkedid, (t_ns, caller) in triggers.items():
        found = first.get(caller if mode == "poll" else linkedid)
        if found is None:
            result.missing += 1
            continue
        result.ms.append((found["record_ns"] - t_ns) / 1e6)
        to_offer.append((found["offered_ns"] - t_ns) / 1e6)
        if found["customer_id"] is None:
            no_record += 1
        elif found["customer_id"] != by_number.get(caller):
            wrong += 1
    result.extra = {
        "mode": mode,
        "placed": driven["placed"],
        "reached_hold": driven["reached_hold"],
        "failed": driven["failed"],
        "without_record": no_record,
        "wrong_record": wrong,
        "offer_p50_ms": percentile(to_offer, 50),
        "offer_p99_ms": percentile(to_offer, 99),
        "wall_seconds": round(wall, 1),
        "server_cpu_pct": round(100 * server_cpu / wall, 1),
        "sim_cpu_pct": round(100 * driven["cpu_seconds"] / wall, 1),
        "workers_cpu_pct": round(100 * worker_cpu / wall, 1),
        "steal_pct": round(steal_pct, 1),
        "client_errors": errors[:5],
        "client_error_count": len(errors),
    }
    return result


async def _fanout_phase(
    runtime: Any, settings: Settings, workers: list[_Remote], agent_ids: Sequence[str]
) -> tuple[Latencies, Latencies]:
    """``settings.fanout`` times, an idle agent goes on break (or back): one
    ``agent_state`` envelope to the ``supervisors`` room."""
    from routing.model import AgentState

    routing = runtime.routing
    rooms = runtime.desk.rooms
    seqs: list[int] = []
    unpublished = 0
    for _ in range(settings.fanout):
        agent_id = next(
            (
                a
                for a in agent_ids
                if routing.router.agent(a).state in (AgentState.AVAILABLE, AgentState.BREAK)
            ),
            agent_ids[0],
        )
        going = "available" if routing.router.agent(agent_id).state is AgentState.BREAK else "break"
        before = rooms.seq("supervisors")
        await routing.set_agent_state(agent_id, going, "fan-out" if going == "break" else None)
        # The envelope of this change (other events may share the room meanwhile).
        published = rooms.since("supervisors", before, time.time()) or []
        mine = [
            e.seq for e in published if e.type == "agent_state" and e.data["agent_id"] == agent_id
        ]
        if mine:
            seqs.append(mine[0])
        else:
            unpublished += 1
        await asyncio.sleep(settings.fanout_gap)
    await asyncio.sleep(1.0)
    deliveries: list[tuple[int, float, int]] = []
    for w in workers:
        deliveries += (await w.call("deliveries"))["reply"]["deliveries"]
    wanted = set(seqs)
    per_update: dict[int, list[float]] = {s: [] for s in seqs}
    for seq, at, received in deliveries:
        if seq in wanted:
            per_update[seq].append((received - at * 1e9) / 1e6)
    every = Latencies("every delivery", expected=settings.fanout * settings.supervisors)
    last = Latencies("last client of each update", expected=settings.fanout)
    last.missing = unpublished
    for ms in per_update.values():
        every.ms += ms
        if ms:
            last.ms.append(max(ms))
        else:
            last.missing += 1
    every.missing = every.expected - len(every.ms)
    every.extra = {
        "updates": len(seqs),
        "unpublished": unpublished,
        "supervisors": settings.supervisors,
    }
    return every, last


async def run(settings: Settings) -> dict[str, Any]:
    """The whole benchmark; returns the report (see ``main`` for the tables)."""
    from callwright.memory import MemoryPolicy
    from callwright.runtime import Runtime

    ctx = multiprocessing.get_context("spawn")
    report: dict[str, Any] = {"settings": {**vars(settings), "modes": list(settings.modes)}}
    with tempfile.TemporaryDirectory(prefix="bench-desk-") as tmp:
        data_dir = Path(tmp) / "data"
        url, drop = await _store_url(settings, data_dir)
        exts = [str(1001 + i) for i in range(settings.agents)]
        sim = _start(ctx, _sim_process, exts, settings.answer_delay, settings.load_sched)
        workers: list[_Remote] = []
        runtime: Any = None
        memory_task: asyncio.Future[None] | None = None
        try:
            sim_port = await asyncio.get_running_loop().run_in_executor(None, sim.conn.recv)
            t0 = time.monotonic()
            agent_ids, supervisor_ids, by_number = await _seed(url, settings)
            report["seed_seconds"] = round(time.monotonic() - t0, 1)
            runtime = Runtime(_config(sim_port, data_dir, url, settings))
            if settings.sqlite_sync and not settings.postgres:
                _sqlite_synchronous(runtime.engine, settings.sqlite_sync)
            await runtime.start()
            # As `callwright serve` does after start-up (callwright.memory).
            memory = MemoryPolicy(settings.gc_freeze_every, runtime.config.server.gc_full_every)
            memory.start(time.monotonic())
            memory_task = asyncio.ensure_future(memory.run())
            await runtime.link.wait_ready(30)
            tracer = _Tracer() if settings.trace else None
            if tracer is not None:
                tracer.install(runtime)
            if settings.agent_rooms == "own":
                _agents_in_own_room_only(runtime)
            tokens = {}
            for agent in await runtime.agents.list():
                tokens[str(agent.id)] = runtime.auth.issue(agent)[0]
            workers = [
                _start(
                    ctx,
                    _worker_entry,
                    runtime.url,
                    settings.seed + i,
                    settings.poll_interval,
                    settings.load_sched,
                )
                for i in range(settings.workers)
            ]
            t0 = time.monotonic()
            shares = [agent_ids[i :: settings.workers] for i in range(settings.workers)]
            replies = await asyncio.gather(
                *(
                    w.call("agents", agents=[(a, tokens[a]) for a in share])
                    for w, share in zip(workers, shares, strict=True)
                )
            )
            connected = sum(r["reply"]["connected"] for r in replies)
            report["agents_connected"] = connected
            report["connect_agents_seconds"] = round(time.monotonic() - t0, 1)
            if connected != settings.agents:
                errors = [e for r in replies for e in r["reply"]["errors"]]
                raise RuntimeError(f"{connected} of {settings.agents} agents connected: {errors}")
            # A server whose agents signed in more than gc_freeze_every seconds
            # ago has frozen their sessions (callwright.memory): one tick now,
            # instead of waiting for the periodic one.
            if memory.enabled:
                memory.tick(time.monotonic())
            n = settings.n_customers
            profiler = cProfile.Profile() if settings.profile else None
            phases = []
            for k, mode in enumerate(settings.modes):
                numbers = [_number(k * n + i) for i in range(n)]
                settled = await _settle(runtime, agent_ids)
                if not settled:
                    log.warning("agents not all available before the %s phase", mode)
                result = await _pop_phase(
                    mode,
                    settings,
                    sim,
                    workers,
                    numbers,
                    by_number,
                    profiler if mode == "push" else None,
                )
                phases.append({**result.summary(), "settled_before": settled})
                print(_pop_line(result.summary()), file=sys.stderr, flush=True)
            for w in workers:  # the pollers stop: nothing else runs in the fan-out phase
                await w.call("mode", mode="idle")
            report["pops"] = phases
            if tracer is not None:
                report["trace"] = tracer.report()
            if profiler is not None and settings.profile:
                profiler.dump_stats(settings.profile)
            if settings.supervisors and settings.fanout:
                await _settle(runtime, agent_ids)
                t0 = time.monotonic()
                sup_tokens = []
                for sup_id in supervisor_ids:
                    agent = await runtime.agents.get(int(sup_id))
                    sup_tokens.append(runtime.auth.issue(agent)[0])
                shares_s = [sup_tokens[i :: settings.workers] for i in range(settings.workers)]
                replies = await asyncio.gather(
                    *(
                        w.call("supervisors", tokens=share)
                        for w, share in zip(workers, shares_s, strict=True)
                    )
                )
                report["supervisors_connected"] = sum(r["reply"]["connected"] for r in replies)
                report["connect_supervisors_seconds"] = round(time.monotonic() - t0, 1)
                every, last = await _fanout_phase(runtime, settings, workers, agent_ids)
                report["fanout"] = [every.summary(), last.summary()]
        finally:
            if memory_task is not None:
                memory_task.cancel()
            for w in workers:
                await w.close()
            if runtime is not None:
                await runtime.stop()
            await sim.close()
            if drop is not None:
                await drop()
    report["machine"] = machine()
    report["date"] = datetime.datetime.now(UTC).isoformat(timespec="seconds")
    return report


async def _store_url(
    settings: Settings, data_dir: Path
) -> tuple[str, Callable[[], Awaitable[None]] | None]:
    if not settings.postgres:
        return f"sqlite+aiosqlite:///{data_dir / 'callwright.db'}", None
    from sqlalchemy import text
    from sqlalchemy.pool import NullPool

    from store import make_engine

    name = f"cw_bench_{secrets.token_hex(6)}"
    admin = make_engine(PG_ADMIN, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))

    async def drop() -> None:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


# -- reporting ------------------------------------------------------------------------


def reference_loop_ms(rounds: int = 5) -> float:
    """This machine's speed at plain Python, as a gauge to compare runs made on
    different days or machines: the best of ``rounds`` timings of one million
    additions in a loop. Shared virtual machines of the same name differ: the
    same code took 34-44% of a core in one round and 52-62% in the next, with
    little steal time (bench/RESULTS.md, "Fifth round")."""

    def loop() -> int:
        total = 0
        for i in range(1_000_000):
            total += i
        return total

    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        loop()
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu or "unknown CPU",
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "reference_loop_ms": reference_loop_ms(),
    }


def _ms(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"  # nan: nothing measured


def _pop_line(s: dict[str, Any]) -> str:
    return (
        f"{s['label']}: {s['count']} of {s['expected']} pops, p50 {_ms(s['p50_ms'])} ms, "
        f"p99 {_ms(s['p99_ms'])} ms, max {_ms(s['max_ms'])} ms, missing {s['missing']}"
    )


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [
        f"Screen-pop: {s['agents']:,} agents connected, {s['rate']:g} calls/s for "
        f"{s['seconds']:g} s per phase, store "
        f"{'PostgreSQL' if s['postgres'] else 'SQLite'}, {s['workers']} client processes, "
        f"server event loop {s.get('event_loop', 'asyncio')}, simulator and clients "
        f"{'SCHED_BATCH' if s.get('load_sched') == 'batch' else 'under the default policy'}"
        + (
            ", their garbage collector paused in each phase"
            if s.get("load_gc", "running") == "paused"
            else ", their garbage collector running"
        )
        + (
            "; what-if: agents in their own room only (not the queue rooms)"
            if s["agent_rooms"] == "own"
            else ""
        )
        + (f"; what-if: SQLite synchronous={s['sqlite_sync']}." if s["sqlite_sync"] else "."),
        "",
        "| desk | pops | missing | without record | p50 ms | p90 ms | p99 ms | max ms | "
        "offer p50 ms | offer p99 ms | server CPU % | simulator CPU % | clients CPU % | "
        "steal % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in report.get("pops", []):
        # A phase that began before the previous one's backlog was worked off.
        mark = "" if p.get("settled_before", True) else " (after a backlog)"
        lines.append(
            f"| {p['label']}{mark} | {p['count']:,} | {p['missing']} | "
            f"{p['without_record'] + p['wrong_record']} | {_ms(p['p50_ms'])} | "
            f"{_ms(p['p90_ms'])} | {_ms(p['p99_ms'])} | {_ms(p['max_ms'])} | "
            f"{_ms(p['offer_p50_ms'])} | {_ms(p['offer_p99_ms'])} | "
            f"{p['server_cpu_pct']} | {p.get('sim_cpu_pct', '')} | {p['workers_cpu_pct']} | "
            f"{p.get('steal_pct', '')} |"
        )
    if report.get("fanout"):
        every, last = report["fanout"]
        lines += [
            "",
            f"Wallboard fan-out: {report.get('supervisors_connected', 0):,} supervisors "
            f"connected, {every['updates']} updates.",
            "",
            "| measured | deliveries | missing | p50 ms | p90 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for f in (every, last):
            lines.append(
                f"| {f['label']} | {f['count']:,} | {f['missing']} | {_ms(f['p50_ms'])} | "
                f"{_ms(f['p90_ms'])} | {_ms(f['p99_ms'])} | {_ms(f['max_ms'])} |"
            )
    if report.get("trace"):
        trace = report["trace"]
        lines += [
            "",
            f"Where the time goes (from the runtime's start: the agents signing in, then "
            f"every phase; the call-event backlog peaked at "
            f"{trace['max_call_event_backlog']:,} events):",
            "",
            "| stage | count | mean ms | p50 ms | p99 ms | total s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for st in trace["stages"]:
            lines.append(
                f"| {st['stage']} | {st['count']:,} | {st['mean_ms']:.2f} | "
                f"{st['p50_ms']:.2f} | {st['p99_ms']:.2f} | {st['total_s']:.1f} |"
            )
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    d = Settings()
    p = argparse.ArgumentParser(
        prog="python -m bench.bench_desk", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--agents", type=int, default=d.agents)
    p.add_argument("--supervisors", type=int, default=d.supervisors)
    p.add_argument("--rate", type=float, default=d.rate, help="new calls a second")
    p.add_argument("--seconds", type=float, default=d.seconds, help="seconds of calls per phase")
    p.add_argument("--hold", type=float, default=d.hold, help="seconds from hold to hangup")
    p.add_argument("--wrap-up", type=float, default=d.wrap_up)
    p.add_argument("--answer-delay", type=float, default=d.answer_delay)
    p.add_argument("--workers", type=int, default=d.workers, help="client processes")
    p.add_argument("--modes", default=",".join(d.modes), help="phases, of: push,lookup,poll")
    p.add_argument("--fanout", type=int, default=d.fanout, help="wallboard updates (0: none)")
    p.add_argument("--fanout-gap", type=float, default=d.fanout_gap)
    p.add_argument("--poll-interval", type=float, default=d.poll_interval)
    p.add_argument("--customers", type=int, default=d.customers)
    p.add_argument("--history", type=int, default=d.history)
    p.add_argument("--postgres", action="store_true", help="PostgreSQL at 127.0.0.1 (new db)")
    p.add_argument("--profile", default=None, help="cProfile this process in the push phase")
    p.add_argument("--trace", action="store_true", help="time each stage of the call path")
    p.add_argument(
        "--agent-rooms",
        choices=("all", "own"),
        default=d.agent_rooms,
        help="own: what-if, agents do not enter the queue rooms",
    )
    p.add_argument(
        "--sqlite-sync",
        choices=("", "full", "normal", "off"),
        default=d.sqlite_sync,
        help="what-if: PRAGMA synchronous of the runtime's SQLite connections",
    )
    p.add_argument(
        "--gc-freeze-every",
        type=float,
        default=d.gc_freeze_every,
        help="[server] gc_freeze_every (0: what-if, no freezing)",
    )
    p.add_argument(
        "--event-loop",
        choices=("uvloop", "asyncio"),
        default=d.event_loop,
        help="[server] event_loop of the server's process (clients and simulator: asyncio)",
    )
    p.add_argument(
        "--load-sched",
        choices=("batch", "normal"),
        default=d.load_sched,
        help="scheduling policy of the simulator and the client workers (SCHED_BATCH or not)",
    )
    p.add_argument(
        "--load-gc",
        choices=("paused", "running"),
        default=d.load_gc,
        help="the simulator's and the client workers' garbage collector during a phase "
        "(paused: what setup made frozen, no collection until the phase's end)",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    modes = tuple(m for m in args.modes.split(",") if m)
    bad = [m for m in modes if m not in MODES]
    if bad:
        p.error(f"--modes: unknown {', '.join(bad)} (use {', '.join(MODES)})")
    args.modes = modes
    if args.customers and args.customers < round(args.rate * args.seconds):
        p.error("--customers: at least one per call of a phase (rate x seconds)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # Every setting has its option of the same name (_parse_args).
    settings = Settings(**{f.name: getattr(args, f.name) for f in fields(Settings)})
    from callwright.cli import run_event_loop  # as `callwright serve` runs the server

    report = run_event_loop(run(settings), settings.event_loop)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        info = report["machine"]
        print(
            f"{info['cpu']}, {info['cpu_count']} cores, {info['python']}; "
            f"load average {info['load_average']}; reference loop "
            f"{info['reference_loop_ms']} ms (1,000,000 additions in Python, best of 5)"
        )
        print(
            f"seeding {report['seed_seconds']} s, {report['agents_connected']} agents "
            f"connected in {report['connect_agents_seconds']} s"
        )
        print()
        print(markdown(report))
        if settings.profile:
            stats = pstats.Stats(settings.profile)
            stats.sort_stats("cumulative").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
