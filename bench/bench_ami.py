"""AMI ingestion benchmark: events per second on one core, from AMI bytes to
AmiEvent values (``cti.ami.framing``) and on to call-model updates
(``cti.calls.tracker``), with panoramisk 1.4's own parser on the same bytes as
the peer.

    python -m bench.bench_ami [--calls N] [--runs R] [--chunk BYTES] [--seed S] [--json]

The byte stream is built once per run of the command (deterministic seed) from
what a real Asterisk 22 sent in the recorded transcripts: the events after
``Originate`` in 03-originate-hold.txt (the caller lands in a holding context
with music on hold), after ``Redirect`` in 04-redirect-bridge.txt (Dial to an
agent, bridge) and after ``Hangup`` in 05-hangup.txt, with all the VarSet,
Newexten and DeviceStateChange noise. Per call, Uniqueids, Linkedids, Local
channel sequence numbers, the bridge id, the agent, the caller's name and
number and the ActionID are rewritten, so every call is distinct; some caller
names are not ASCII. Calls arrive as a Poisson process and each call's three
bursts are spread over its life (hold, talk time), then all events are merged
in time order, so bursts of concurrent calls interleave as on a busy PBX. The
stream is cut into TCP-sized chunks (64 KiB by default), so messages and
multi-byte characters are split across chunks.

Measured paths (single process, single thread; ``time.perf_counter`` around
the feeding loop only, stream building and result accounting excluded):

* ``framing``: ``AmiConnection(Role.CLIENT)``: chunks -> ``AmiEvent``.
* ``framing + tracker``: the same, and every event through
  ``CallTracker.feed(event, now)`` (``now`` advances per chunk, as a shell
  reading the clock once per socket read would pass it).
* ``tracker only``: ``CallTracker.feed`` on events decoded beforehand (what the
  tracker itself costs).
* ``panoramisk``: ``panoramisk.ami_protocol.AMIProtocol.data_received`` on the
  same chunks, with a stub factory whose ``dispatch`` counts the messages
  (panoramisk's real ``Manager.dispatch`` also matches every event against the
  registered patterns: not counted). Encoding utf8, panoramisk's Manager default.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import heapq
import json
import os
import platform
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import takewhile
from pathlib import Path
from typing import Any

from cti.ami.framing import NEED_DATA, AmiConnection, Role
from cti.ami.messages import AmiEvent
from cti.calls.model import CallEnded, CallStarted
from cti.calls.tracker import CallTracker
from sim.transcripts import FROM_PBX, TO_PBX, read_transcript

__all__ = [
    "PATHS",
    "Agreement",
    "Counts",
    "Stream",
    "build_stream",
    "chunked",
    "decode_events",
    "main",
    "measure",
    "run_framing",
    "run_panoramisk",
    "run_tracker",
    "run_tracker_only",
    "split_characters",
    "verify",
]

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ami"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
TARGET_EVENTS_PER_SECOND = 100_000

# One call = the event bursts Asterisk sent after these actions (transcript, ActionID).
PHASES = (
    ("03-originate-hold.txt", "orig-1"),  # inbound call parked on hold music
    ("04-redirect-bridge.txt", "redir-1"),  # redirected to an agent, bridged
    ("05-hangup.txt", "hup-1"),  # hung up with cause 16
)

# Caller names set by the "dialplan" (the recording's "Test Caller"); the
# non-ASCII ones make multi-byte UTF-8 characters straddle chunk boundaries.
CALLER_NAMES = (
    "Test Caller",
    "Alice Martin",
    "Bob Smith",
    "Jörg Müller",
    "José Ramírez",
    "Zoë Ørsted",
    "Łukasz Wójcik",
    "Ana Conceição",
    "Dvořák Antonín",
    "山田 太郎",
    "Ελένη Παππά",
    "Carol Jones",
)
AGENTS = 50
DEFAULT_CALLS = 2000
DEFAULT_RUNS = 5
DEFAULT_CHUNK = 64 * 1024
DEFAULT_SEED = 2026
ARRIVALS_PER_SECOND = 2.0  # Poisson arrival rate of new calls
HOLD_SECONDS = (5.0, 60.0)  # uniform: time parked on hold before the redirect
MEAN_TALK_SECONDS = 180.0  # exponential: bridged time before the hangup
EVENT_GAP_SECONDS = (0.0001, 0.002)  # uniform: between two events of one burst
BASE_EPOCH = 1796006921  # the recording's clock, used in rewritten Uniqueids

_FIXED_TOKENS = {
    "orig-1": "orig",
    "call-0001": "callvar",
    "Test Caller": "name",
    "5551234": "num",
    "agent1": "agent",
}


# -- the byte stream -----------------------------------------------------------


def recorded_phases(fixtures: Path = FIXTURES) -> list[list[str]]:
    """Per phase, the events Asterisk sent right after the action (wire text of
    each message without its terminating blank line). Responses are left out."""
    phases: list[list[str]] = []
    for name, action_id in PHASES:
        segments = read_transcript(fixtures / name)[0].segments
        marker = f"ActionID: {action_id}\r\n".encode()
        start = next(
            i for i, s in enumerate(segments) if s.direction == TO_PBX and marker in s.data
        )
        burst = b"".join(
            s.data for s in takewhile(lambda s: s.direction == FROM_PBX, segments[start + 1 :])
        )
        blocks = burst.decode("utf-8").split("\r\n\r\n")
        phases.append([block for block in blocks if block.startswith("Event: ")])
    return phases


@dataclass(frozen=True, slots=True)
class _Template:
    phases: list[list[str]]  # str.format templates
    uniqueids: list[int]  # per Uniqueid placeholder u<k>: the phase it is created in
    channels: int  # Local channel sequence placeholders c0..c<n-1>
    bridges: int  # bridge id placeholders b0..b<n-1>


def _compile(phases: list[list[str]]) -> _Template:
    """Turn the recorded identifiers into ``str.format`` placeholders."""
    uniqueids: dict[str, int] = {}  # recorded Uniqueid -> phase it first shows in
    channels: dict[str, None] = {}
    bridges: dict[str, None] = {}
    for index, blocks in enumerate(phases):
        text = "\n".join(blocks).replace("\r\n", "\n")
        for value in re.findall(r"^\w*(?:Uniqueid|Linkedid): (\d+\.\d+)$", text, re.M):
            uniqueids.setdefault(value, index)
        channels.update(dict.fromkeys(re.findall(r"-([0-9a-f]{8});[12]\b", text)))
        bridges.update(dict.fromkeys(re.findall(r"^BridgeUniqueid: (\S+)$", text, re.M)))
    names = dict(_FIXED_TOKENS)
    names.update({value: f"u{k}" for k, value in enumerate(uniqueids)})
    names.update({value: f"c{k}" for k, value in enumerate(channels)})
    names.update({value: f"b{k}" for k, value in enumerate(bridges)})
    alternatives = "|".join(re.escape(token) for token in sorted(names, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.])(?:{alternatives})(?![\w.])")

    def template(block: str) -> str:
        escaped = block.replace("{", "{{").replace("}", "}}")
        return pattern.sub(lambda m: "{" + names[m.group(0)] + "}", escaped)

    return _Template(
        phases=[[template(block) for block in blocks] for blocks in phases],
        uniqueids=list(uniqueids.values()),
        channels=len(channels),
        bridges=len(bridges),
    )


@dataclass(frozen=True, slots=True)
class Stream:
    """The AMI byte stream (Asterisk -> client), banner first."""

    data: bytes
    calls: int
    events: int  # AMI events in ``data``
    events_per_call: int
    non_ascii_events: int  # events holding a multi-byte UTF-8 character
    peak_concurrent_calls: int
    seconds_of_traffic: float  # from the first to the last event


def build_stream(
    calls: int = DEFAULT_CALLS, seed: int = DEFAULT_SEED, fixtures: Path = FIXTURES
) -> Stream:
    """Build ``calls`` interleaved copies of the recorded call; same seed, same bytes."""
    tmpl = _compile(recorded_phases(fixtures))
    rng = random.Random(seed)
    timeline: list[tuple[float, int, int, bytes]] = []  # (time, call, n-th event, wire)
    lifetimes: list[tuple[float, float]] = []
    arrival = 0.0
    for call in range(calls):
        arrival += rng.expovariate(ARRIVALS_PER_SECOND)
        starts = [arrival]
        starts.append(arrival + 0.05 + rng.uniform(*HOLD_SECONDS))
        starts.append(starts[1] + 0.05 + max(5.0, rng.expovariate(1 / MEAN_TALK_SECONDS)))
        values: dict[str, str] = {
            "orig": f"orig-{call + 1}",
            "callvar": f"call-{call + 1:04d}",
            "name": rng.choice(CALLER_NAMES),
            "num": f"555{rng.randrange(10**7):07d}",
            "agent": f"agent{1 + call % AGENTS}",
        }
        for k, phase in enumerate(tmpl.uniqueids):
            values[f"u{k}"] = (
                f"{BASE_EPOCH + int(starts[phase])}.{4 + call * len(tmpl.uniqueids) + k}"
            )
        for k in range(tmpl.channels):
            values[f"c{k}"] = f"{2 + call * tmpl.channels + k:08x}"
        for k in range(tmpl.bridges):
            values[f"b{k}"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        n = 0
        at = 0.0
        for start, blocks in zip(starts, tmpl.phases, strict=True):
            at = start
            for block in blocks:
                timeline.append((at, call, n, block.format(**values).encode("utf-8")))
                at += rng.uniform(*EVENT_GAP_SECONDS)
                n += 1
        lifetimes.append((arrival, at))
    timeline.sort()
    texts = [wire for _, _, _, wire in timeline]
    data = BANNER + b"\r\n\r\n".join(texts) + b"\r\n\r\n"
    return Stream(
        data=data,
        calls=calls,
        events=len(texts),
        events_per_call=sum(len(blocks) for blocks in tmpl.phases),
        non_ascii_events=sum(1 for text in texts if not text.isascii()),
        peak_concurrent_calls=_peak(lifetimes),
        seconds_of_traffic=(timeline[-1][0] - timeline[0][0]) if timeline else 0.0,
    )


def _peak(lifetimes: Sequence[tuple[float, float]]) -> int:
    ends: list[float] = []
    peak = 0
    for start, end in sorted(lifetimes):
        while ends and ends[0] <= start:
            heapq.heappop(ends)
        heapq.heappush(ends, end)
        peak = max(peak, len(ends))
    return peak


def chunked(data: bytes, size: int = DEFAULT_CHUNK) -> list[bytes]:
    """``data`` cut as a socket read of ``size`` bytes would cut it."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def split_characters(chunks: Sequence[bytes]) -> int:
    """Chunk boundaries that fall inside a multi-byte UTF-8 character."""
    return sum(1 for chunk in chunks[1:] if chunk and chunk[0] & 0xC0 == 0x80)


# -- the measured paths ------------------------------------------------------------


@dataclass(slots=True)
class Counts:
    """What one path saw. Paths that do not track calls leave the call fields 0."""

    events: int = 0  # AMI events the path delivered
    domain_events: int = 0  # CallEvents the tracker returned
    calls_started: int = 0
    calls_ended: int = 0
    live_calls: int = 0  # calls still live in the tracker at the end
    tracker_orphans: int = 0
    tracker_internal_errors: int = 0
    invalid_utf8: int = 0  # Callwright codec: messages that were not valid UTF-8


def run_framing(chunks: Sequence[bytes]) -> tuple[float, Counts]:
    conn = AmiConnection(Role.CLIENT)
    receive = conn.receive_data
    next_message = conn.next_message
    events = 0
    t0 = time.perf_counter()
    for chunk in chunks:
        receive(chunk)
        while True:
            message = next_message()
            if message is NEED_DATA:
                break
            if isinstance(message, AmiEvent):
                events += 1
    elapsed = time.perf_counter() - t0
    return elapsed, Counts(events=events, invalid_utf8=conn.stats.invalid_utf8)


def run_tracker(chunks: Sequence[bytes]) -> tuple[float, Counts]:
    conn = AmiConnection(Role.CLIENT)
    tracker = CallTracker()
    receive = conn.receive_data
    next_message = conn.next_message
    feed = tracker.feed
    events = domain = started = ended = 0
    now = 0.0
    t0 = time.perf_counter()
    for chunk in chunks:
        receive(chunk)
        now += 0.01
        while True:
            message = next_message()
            if message is NEED_DATA:
                break
            if isinstance(message, AmiEvent):
                events += 1
                out = feed(message, now)
                if out:
                    domain += len(out)
                    for fact in out:
                        kind = type(fact)
                        if kind is CallStarted:
                            started += 1
                        elif kind is CallEnded:
                            ended += 1
    elapsed = time.perf_counter() - t0
    return elapsed, _tracker_counts(tracker, events, domain, started, ended, conn)


def run_tracker_only(events: Sequence[AmiEvent]) -> tuple[float, Counts]:
    tracker = CallTracker()
    feed = tracker.feed
    domain = started = ended = 0
    now = 0.0
    t0 = time.perf_counter()
    for event in events:
        now += 0.0001
        out = feed(event, now)
        if out:
            domain += len(out)
            for fact in out:
                kind = type(fact)
                if kind is CallStarted:
                    started += 1
                elif kind is CallEnded:
                    ended += 1
    elapsed = time.perf_counter() - t0
    return elapsed, _tracker_counts(tracker, len(events), domain, started, ended, None)


def _tracker_counts(
    tracker: CallTracker,
    events: int,
    domain: int,
    started: int,
    ended: int,
    conn: AmiConnection | None,
) -> Counts:
    return Counts(
        events=events,
        domain_events=domain,
        calls_started=started,
        calls_ended=ended,
        live_calls=len(tracker.calls()),
        tracker_orphans=tracker.stats.orphans,
        tracker_internal_errors=tracker.stats.internal_errors,
        invalid_utf8=conn.stats.invalid_utf8 if conn is not None else 0,
    )


class _Transport:
    """Enough of an asyncio transport for AMIProtocol.connection_made."""

    def write(self, data: bytes) -> None:  # pragma: no cover - nothing is sent
        pass

    def close(self) -> None:  # pragma: no cover
        pass


class _Factory:
    """Stands for panoramisk's Manager: ``dispatch`` counts events (and hands
    them to ``check`` if given)."""

    save_stream = None
    forgetable_actions: tuple[str, ...] = ()

    def __init__(self, check: Callable[[Any], None] | None = None) -> None:
        self.count = 0
        self.check = check

    def dispatch(self, message: Any) -> None:
        self.count += 1
        if self.check is not None:
            self.check(message)

    def connection_lost(self, exc: object) -> None:  # pragma: no cover
        pass


def _panoramisk_protocol(factory: _Factory) -> Any:
    # Not panoramisk.testing: importing it sets the line ending to LF process-wide.
    from panoramisk.ami_protocol import AMIProtocol  # type: ignore[import-untyped]

    protocol = AMIProtocol()
    protocol.connection_made(_Transport())
    protocol.factory = factory
    protocol.encoding = "utf8"  # panoramisk.Manager's default
    return protocol


def run_panoramisk(chunks: Sequence[bytes]) -> tuple[float, Counts]:
    factory = _Factory()
    protocol = _panoramisk_protocol(factory)
    data_received = protocol.data_received
    t0 = time.perf_counter()
    for chunk in chunks:
        data_received(chunk)
    elapsed = time.perf_counter() - t0
    return elapsed, Counts(events=factory.count)


# -- checking that the paths saw the same events --------------------------------------


@dataclass(frozen=True, slots=True)
class Agreement:
    """Both parsers on the same chunks, event by event."""

    callwright_events: int
    callwright_replacement_chars: int  # U+FFFD in Callwright's decoded values (should be 0)
    panoramisk_events: int
    panoramisk_differing: int  # events whose headers differ from the wire
    panoramisk_damaged_values: int  # of those: a value lost characters (split UTF-8)
    panoramisk_lost_characters: int  # characters missing from those values
    panoramisk_dropped_empty_last: int  # of those: an empty last header was dropped


def decode_events(chunks: Sequence[bytes]) -> list[AmiEvent]:
    conn = AmiConnection(Role.CLIENT)
    events: list[AmiEvent] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        while (message := conn.next_message()) is not NEED_DATA:
            if isinstance(message, AmiEvent):
                events.append(message)
    return events


class _Comparison:
    """Compares panoramisk's messages, as they come, with our events in order."""

    def __init__(self, ours: Sequence[AmiEvent]) -> None:
        self.ours = ours
        self.index = 0
        self.differing = self.damaged = self.lost = self.dropped = 0

    def __call__(self, message: Any) -> None:
        if self.index >= len(self.ours):
            self.differing += 1
            return
        event = self.ours[self.index]
        self.index += 1
        expected = dict(event.headers)
        got = {key: value for key, value in message.items() if key != "content"}
        if got == expected:
            return
        self.differing += 1
        short = [
            len(expected[key]) - len(value)
            for key, value in got.items()
            if key in expected and len(value) < len(expected[key])
        ]
        if short:
            self.damaged += 1
            self.lost += sum(short)
        last_name, last_value = event.headers[-1]
        if last_value == "" and last_name not in got:
            self.dropped += 1


def verify(chunks: Sequence[bytes], ours: Sequence[AmiEvent] | None = None) -> Agreement:
    """Decode the chunks with both parsers and compare event by event
    (``ours``: the chunks already decoded by ``decode_events``)."""
    if ours is None:
        ours = decode_events(chunks)
    compare = _Comparison(ours)
    factory = _Factory(compare)
    protocol = _panoramisk_protocol(factory)
    for chunk in chunks:
        protocol.data_received(chunk)
    replacement = sum(1 for event in ours for _, value in event.headers if "\ufffd" in value)
    return Agreement(
        callwright_events=len(ours),
        callwright_replacement_chars=replacement,
        panoramisk_events=factory.count,
        panoramisk_differing=compare.differing,
        panoramisk_damaged_values=compare.damaged,
        panoramisk_lost_characters=compare.lost,
        panoramisk_dropped_empty_last=compare.dropped,
    )


# -- timing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    path: str
    events: int
    best_seconds: float
    median_seconds: float
    counts: Counts

    @property
    def best_events_per_second(self) -> float:
        return self.events / self.best_seconds if self.best_seconds else 0.0

    @property
    def median_events_per_second(self) -> float:
        return self.events / self.median_seconds if self.median_seconds else 0.0

    @property
    def median_us_per_event(self) -> float:
        return self.median_seconds / self.events * 1e6 if self.events else 0.0

    @property
    def best_us_per_event(self) -> float:
        return self.best_seconds / self.events * 1e6 if self.events else 0.0


PATHS = ("framing", "framing + tracker", "tracker only", "panoramisk 1.4 parser")


def measure(
    paths: Sequence[tuple[str, Callable[[], tuple[float, Counts]]]], runs: int
) -> list[Result]:
    """One warm-up each, then ``runs`` rounds of every path in turn (so load
    from other processes hits all paths alike); best and median per path."""
    times: dict[str, list[float]] = {name: [] for name, _ in paths}
    counts: dict[str, Counts] = {}
    for name, run in paths:
        _, counts[name] = run()  # warm-up: imports, caches, allocator
    for _ in range(runs):
        for name, run in paths:
            gc.collect()
            elapsed, counts[name] = run()
            times[name].append(elapsed)
    return [
        Result(
            name,
            counts[name].events,
            min(times[name]),
            statistics.median(times[name]),
            counts[name],
        )
        for name, _ in paths
    ]


def run_all(chunks: Sequence[bytes], events: Sequence[AmiEvent], runs: int) -> list[Result]:
    """Time every path; ``events``: the chunks already decoded (for "tracker only")."""
    runners: list[Callable[[], tuple[float, Counts]]] = [
        lambda: run_framing(chunks),
        lambda: run_tracker(chunks),
        lambda: run_tracker_only(events),
        lambda: run_panoramisk(chunks),
    ]
    return measure(list(zip(PATHS, runners, strict=True)), runs)


# -- report ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
    }


def _fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def markdown(
    results: Sequence[Result], stream: Stream, chunks: Sequence[bytes], agreement: Agreement
) -> str:
    lines = [
        "| path | events | events/s (median) | µs/event (median) | events/s (best) | "
        "µs/event (best) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.path} | {_fmt_int(r.events)} | {_fmt_int(r.median_events_per_second)} | "
            f"{r.median_us_per_event:.2f} | {_fmt_int(r.best_events_per_second)} | "
            f"{r.best_us_per_event:.2f} |"
        )
    tracked = results[1].counts
    target = results[1].median_events_per_second
    verdict = "met" if target >= TARGET_EVENTS_PER_SECOND else "NOT met"
    lines += [
        "",
        f"Stream: {_fmt_int(stream.calls)} calls x {stream.events_per_call} events = "
        f"{_fmt_int(stream.events)} events, {len(stream.data) / 1e6:.1f} MB in "
        f"{_fmt_int(len(chunks))} chunks of {_fmt_int(len(chunks[0]) if chunks else 0)} bytes; "
        f"peak {_fmt_int(stream.peak_concurrent_calls)} concurrent calls over "
        f"{stream.seconds_of_traffic:,.0f} s of simulated traffic; "
        f"{_fmt_int(stream.non_ascii_events)} events hold non-ASCII caller names; "
        f"{split_characters(chunks)} chunk boundaries fall inside a UTF-8 character.",
        "",
        f"Tracker: {_fmt_int(tracked.calls_started)} calls started, "
        f"{_fmt_int(tracked.calls_ended)} ended, {tracked.live_calls} live at the end, "
        f"{_fmt_int(tracked.domain_events)} domain events, {tracked.tracker_orphans} orphan "
        f"events, {tracked.tracker_internal_errors} internal errors.",
        "",
        f"Same events: Callwright decoded {_fmt_int(agreement.callwright_events)} events "
        f"({agreement.callwright_replacement_chars} U+FFFD), panoramisk "
        f"{_fmt_int(agreement.panoramisk_events)}. "
        f"{_fmt_int(agreement.panoramisk_differing)} of panoramisk's differ from the wire "
        "(an event can show both defects): "
        f"{_fmt_int(agreement.panoramisk_dropped_empty_last)} lost an empty last header "
        "(panoramisk strips each message: an empty VarSet `Value: ` or Newexten "
        "`AppData: ` at the end is lost), "
        f"{agreement.panoramisk_damaged_values} lost "
        f"{agreement.panoramisk_lost_characters} character(s) of a caller name split "
        "across two reads.",
        "",
        f"Target (framing + tracker >= {_fmt_int(TARGET_EVENTS_PER_SECOND)} events/s, median): "
        f"{verdict} ({target / TARGET_EVENTS_PER_SECOND:.2f}x).",
    ]
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ami", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--calls", type=_positive, default=DEFAULT_CALLS)
    parser.add_argument("--runs", type=_positive, default=DEFAULT_RUNS)
    parser.add_argument("--chunk", type=_positive, default=DEFAULT_CHUNK, help="bytes per read")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    stream = build_stream(args.calls, args.seed)
    chunks = chunked(stream.data, args.chunk)
    events = decode_events(chunks)
    agreement = verify(chunks, events)
    results = run_all(chunks, events, args.runs)
    if args.json:
        print(
            json.dumps(
                {
                    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                    "machine": machine(),
                    "args": vars(args),
                    "stream": {k: v for k, v in asdict(stream).items() if k != "data"}
                    | {"bytes": len(stream.data), "chunks": len(chunks)},
                    "agreement": asdict(agreement),
                    "results": [
                        {
                            "path": r.path,
                            "events": r.events,
                            "best_seconds": r.best_seconds,
                            "median_seconds": r.median_seconds,
                            "events_per_second_median": r.median_events_per_second,
                            "us_per_event_median": r.median_us_per_event,
                            "events_per_second_best": r.best_events_per_second,
                            "us_per_event_best": r.best_us_per_event,
                            "counts": asdict(r.counts),
                        }
                        for r in results
                    ],
                },
                indent=2,
            )
        )
    else:
        info = machine()
        print(
            f"{info['cpu']}, {info['cpu_count']} cores, {info['python']}; "
            f"{args.runs} runs per path (median and best), one process, one thread."
        )
        print()
        print(markdown(results, stream, chunks, agreement))
    return 0


if __name__ == "__main__":
    sys.exit(main())
