"""Smoke test of the desk benchmark (bench/bench_desk.py) at a tiny size: the
simulator, client and server processes run, every call's offer reaches an
agent with the right customer in each mode, the fan-out reaches every
supervisor, and the report and tables are well-formed. Timings are never
asserted (shared, noisy machine)."""

from __future__ import annotations

import json
import math
import multiprocessing
import multiprocessing.connection
import os
from collections.abc import Callable
from typing import Any

import pytest

from bench.bench_desk import (
    Settings,
    _machine_ticks,
    _steal_and_total,
    main,
    markdown,
    percentile,
)

TINY = [
    "--agents", "6", "--supervisors", "4", "--rate", "4", "--seconds", "1.5",
    "--hold", "5", "--wrap-up", "0.2", "--answer-delay", "0.05", "--workers", "2",
    "--fanout", "3", "--fanout-gap", "0.2", "--poll-interval", "0.5", "--history", "1",
]  # fmt: skip


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert math.isnan(percentile([], 99))


def test_the_command_rejects_an_unknown_mode_and_too_few_customers() -> None:
    with pytest.raises(SystemExit):
        main(["--modes", "push,telepathy"])
    with pytest.raises(SystemExit):
        main(["--rate", "10", "--seconds", "10", "--customers", "50"])


def test_every_offer_and_update_arrives_in_each_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TINY, "--trace", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    calls = Settings(rate=4, seconds=1.5).calls
    assert calls == 6
    assert report["agents_connected"] == 6
    assert [p["mode"] for p in report["pops"]] == ["push", "lookup", "poll"]
    for pop in report["pops"]:
        assert pop["placed"] == pop["reached_hold"] == pop["expected"] == calls, pop
        # Every call reached an agent's desk, with the caller's own record.
        assert pop["missing"] == 0 and pop["count"] == calls, pop
        assert pop["without_record"] == 0 and pop["wrong_record"] == 0, pop
        assert pop["client_error_count"] == 0, pop["client_errors"]
        assert 0 < pop["p50_ms"] <= pop["p90_ms"] <= pop["p99_ms"] <= pop["max_ms"]
        assert 0 <= pop["steal_pct"] <= 100, pop  # the machine's, over the phase
        assert pop["sim_cpu_pct"] > 0 and pop["server_cpu_pct"] > 0, pop
    push, lookup, _ = report["pops"]
    # The pushed pop carries the history; the lookup gets the record after the offer.
    assert lookup["offer_p50_ms"] <= lookup["p50_ms"]
    assert push["offer_p50_ms"] == push["p50_ms"]
    every, last = report["fanout"]
    assert report["supervisors_connected"] == 4
    assert every["count"] == every["expected"] == 3 * 4 and every["missing"] == 0
    assert last["count"] == 3 and last["max_ms"] == every["max_ms"]
    stages = {s["stage"] for s in report["trace"]["stages"]}
    assert "store: call record store (until its batch commits)" in stages
    assert "store: call record upsert_many (one batch)" in stages
    assert "call event -> VoiceRouting.on_call_event" in stages
    assert report["machine"]["cpu_count"] >= 1
    assert report["machine"]["reference_loop_ms"] > 0

    table = markdown(report)
    assert "their garbage collector paused in each phase" in table  # the default
    assert "| server CPU % | simulator CPU % | clients CPU % | steal % |" in table
    assert "| Callwright push (pop in the offer) | 6 | 0 | 0 |" in table
    assert "| peer: lookup after the offer | 6 | 0 | 0 |" in table
    assert "| peer: 1 s REST poll + lookup | 6 | 0 | 0 |" in table
    assert "| every delivery | 12 | 0 |" in table
    assert "| store: routing journal write |" in table


def test_the_text_output_holds_the_tables(capsys: pytest.CaptureFixture[str]) -> None:
    args = [*TINY, *"--modes push --fanout 0 --agent-rooms own --load-gc running".split()]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "6 agents connected" in out
    assert "what-if: agents in their own room only" in out
    assert "their garbage collector running" in out
    assert "| Callwright push (pop in the offer) | 6 | 0 | 0 |" in out
    assert "Wallboard fan-out" not in out


def in_a_child(target: Callable[..., None], *args: Any) -> Any:
    """What ``target(*args, conn)`` sends back from a spawned process, as the
    simulator and the client workers are run."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=target, args=(*args, child))
    process.start()
    try:
        assert parent.poll(60), "the child process did not answer"
        return parent.recv()
    finally:
        process.join(10)


def _policy_after(policy: str, conn: multiprocessing.connection.Connection) -> None:
    from bench.bench_desk import _as_load

    _as_load(policy)
    conn.send(os.sched_getscheduler(0))


@pytest.mark.parametrize(
    ("policy", "expected"), [("batch", os.SCHED_BATCH), ("normal", os.SCHED_OTHER)]
)
def test_load_generators_run_under_the_policy_asked_for(policy: str, expected: int) -> None:
    assert in_a_child(_policy_after, policy) == expected


def test_steal_is_the_eighth_figure_of_the_cpu_line_and_part_of_the_total() -> None:
    # A line this machine's /proc/stat gave (user nice system idle iowait irq softirq
    # steal guest guest_nice).
    line = "cpu  408141 1957 92948 580810 2783 0 10233 20819 0 0\n"
    assert _steal_and_total(line) == (20819, 408141 + 1957 + 92948 + 580810 + 2783 + 10233 + 20819)
    steal, total = _machine_ticks()  # Linux: read from /proc/stat
    assert 0 <= steal <= total and total > 0


def _collector_in_a_phase(conn: multiprocessing.connection.Connection) -> None:
    import gc

    from bench.bench_desk import _pause_collector, _resume_collector

    setup = [[i] for i in range(1000)]  # what a load generator made before a phase
    _pause_collector()
    paused = (gc.isenabled(), gc.get_freeze_count() >= len(setup))
    _resume_collector()
    conn.send((paused, (gc.isenabled(), gc.get_freeze_count())))


def test_a_load_generator_stops_collecting_in_a_phase_and_starts_again_after() -> None:
    paused, resumed = in_a_child(_collector_in_a_phase)
    assert paused == (False, True)  # not collecting; setup's objects frozen
    assert resumed == (True, 0)
