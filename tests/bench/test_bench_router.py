"""Smoke test of the routing benchmark (bench/bench_router.py) on a tiny
scenario: every phase runs on both routers and accounts for its work. Timings
are never asserted (shared, noisy machine)."""

from __future__ import annotations

import json

import pytest

from bench.bench_router import build_scenario, main, run
from routing.engine import Router


@pytest.fixture(scope="module")
def scenario():
    return build_scenario(agents=60, tasks=400, queues=10, seed=7)


def test_same_seed_builds_the_same_scenario(scenario) -> None:
    again = build_scenario(agents=60, tasks=400, queues=10, seed=7)
    assert again == scenario
    assert build_scenario(agents=60, tasks=400, queues=10, seed=8).tasks != scenario.tasks
    assert len(scenario.queues) == 10 and len(scenario.agents) == 60 and len(scenario.tasks) == 400
    Router(scenario.queues)  # every generated expression and step is valid
    assert {t.channel for t in scenario.tasks} == {"voice", "email"}


@pytest.mark.parametrize("naive", [False, True])
def test_every_phase_runs_and_accounts_for_its_assignments(scenario, naive: bool) -> None:
    phases, setup = run(scenario, naive=naive, steady=150, arrivals=100)
    assert [p.phase for p in phases] == ["backlog", "sign-in", "steady", "arrivals"]
    backlog, signin, steady, arrivals = phases
    assert backlog.calls == 400 and backlog.assignments == 0
    assert signin.assignments > 0
    assert 150 <= steady.assignments <= 155  # the last call may assign more than one
    assert 0 < arrivals.assignments <= 100 + arrivals.rejects
    for p in phases:
        assert p.decisions == len(p.latencies_ns) <= p.calls
        assert p.rejects <= p.offers
    assert set(setup) == {"build_seconds", "add_agents_seconds"}


def test_command_line_prints_a_table_and_json(capsys) -> None:
    args = ["--agents", "30", "--tasks", "200", "--queues", "6", "--steady", "50"]
    args += ["--arrivals", "40", "--naive-agents", "20", "--naive-tasks", "100"]
    args += ["--naive-steady", "20", "--naive-arrivals", "20"]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "| router | steady | 30 | 200 | 50 |" in table
    assert "| naive | steady | 20 | 100 | 20 |" in table
    assert main([*args, "--json", "--skip-naive"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["router"] for r in report["runs"]] == ["router"]
    steady = report["runs"][0]["phases"][2]
    assert steady["phase"] == "steady" and steady["assignments"] == 50
    assert report["machine"]["cpu_count"] >= 1
