"""Flows refused as graphs: one test per rule, each message naming flow and node."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ivr import Flow, FlowError, load_flow, load_flows, parse_flow, problems, validate_flow

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ("support", "billing")


def flow(nodes: str, *, head: str = "") -> Flow:
    text = f'[flow]\nname = "line"\nstart = "s"\nlanguage = "en"\ntimezone = "UTC"\n{head}\n{nodes}'
    return parse_flow(tomllib.loads(text))


def refused(f: Flow) -> str:
    with pytest.raises(FlowError) as info:
        validate_flow(f, QUEUES)
    return str(info.value)


def test_the_sample_flow_passes_against_the_configured_queues() -> None:
    sample = load_flow(ROOT / "flows" / "support.toml")
    assert problems(sample, QUEUES) == []


def test_a_missing_target_is_refused_naming_the_key() -> None:
    f = flow(
        """
[nodes.s]
kind = "menu"
prompt = "1 or 2"
choices = { 1 = "end", 2 = "ned" }
failure = "end"
[nodes.end]
kind = "hangup"
"""
    )
    assert refused(f) == (
        "flow line, node s: choices.2: names the node 'ned', which does not exist"
    )


def test_a_missing_start_node_is_refused() -> None:
    text = '[flow]\nname = "line"\nstart = "nope"\nlanguage = "en"\ntimezone = "UTC"\n'
    f = parse_flow(tomllib.loads(text + '[nodes.x]\nkind = "hangup"\n'))
    assert refused(f) == "flow line: start: names the node 'nope', which does not exist"


def test_an_unreachable_node_is_refused() -> None:
    f = flow(
        """
[nodes.s]
kind = "hangup"
[nodes.orphan]
kind = "say"
prompt = "Nobody hears this."
next = "s"
"""
    )
    assert refused(f) == "flow line, node orphan: unreachable from the start node 's'"


def test_a_loop_that_never_waits_for_the_caller_is_refused() -> None:
    f = flow(
        """
[nodes.s]
kind = "say"
prompt = "Hello."
next = "check"
[nodes.check]
kind = "branch"
cases = [{ when = "task.priority > 5", next = "end" }]
otherwise = "again"
[nodes.again]
kind = "set"
attributes = { looped = true }
next = "s"
[nodes.end]
kind = "hangup"
"""
    )
    assert refused(f) == (
        "flow line, node s: a loop that never waits for the caller: s -> check -> again -> s"
    )


def test_an_input_loop_with_no_exit_is_refused() -> None:
    f = flow(
        """
[nodes.s]
kind = "menu"
prompt = "Press 1."
choices = { 1 = "b" }
failure = "b"
[nodes.b]
kind = "menu"
prompt = "Press 1 again."
choices = { 1 = "s", 2 = "s" }
failure = "s"
"""
    )
    assert refused(f) == (
        "flow line, node s: an input loop with no exit: every choice and failure branch "
        "of s -> b -> s leads back into it"
    )


def test_unbounded_retries_through_the_failure_branch_are_refused() -> None:
    f = flow(
        """
[nodes.s]
kind = "menu"
prompt = "Press 1 to leave."
choices = { 1 = "end" }
failure = "sorry"
[nodes.sorry]
kind = "say"
prompt = "Let us try again."
next = "s"
[nodes.end]
kind = "hangup"
"""
    )
    message = refused(f)
    assert message == (
        "flow line, node s: failure: unbounded retries: a caller who never presses a key "
        "goes round s -> s for ever (failure branches lead back here)"
    )


def test_failure_branches_bouncing_between_two_inputs_are_unbounded_too() -> None:
    f = flow(
        """
[nodes.s]
kind = "menu"
prompt = "Press 1 to leave."
choices = { 1 = "end" }
failure = "ask"
[nodes.ask]
kind = "collect"
prompt = "Your number."
var = "n"
next = "end"
failure = "s"
[nodes.end]
kind = "hangup"
"""
    )
    assert refused(f).startswith(
        "flow line, node s: failure: unbounded retries: a caller who never presses a key "
        "goes round s -> ask -> s"
    )


def test_an_unknown_queue_is_refused_with_the_configured_ones() -> None:
    f = flow('[nodes.s]\nkind = "queue"\nqueue = "sales"\n')
    assert refused(f) == (
        "flow line, node s: queue: unknown queue 'sales' (configured: support, billing)"
    )
    assert problems(f, None) == []  # no queue list: not checked


def test_a_lookup_of_a_var_no_node_collects_is_refused() -> None:
    f = flow(
        """
[nodes.s]
kind = "lookup"
by = "account_number"
var = "acount"
found = "end"
not_found = "end"
[nodes.end]
kind = "hangup"
"""
    )
    assert refused(f) == (
        "flow line, node s: var: 'acount' is never collected (no collect node has var = 'acount')"
    )


def test_a_survey_entry_that_reaches_no_survey_node_is_refused() -> None:
    f = flow(
        """
[nodes.s]
kind = "queue"
queue = "support"
[nodes.after]
kind = "hangup"
prompt = "Thanks."
""",
        head='survey = "after"',
    )
    assert refused(f) == "flow line, node after: the survey starts here but reaches no survey node"


def test_every_problem_is_listed_in_file_order() -> None:
    f = flow(
        """
[nodes.s]
kind = "queue"
queue = "sales"
[nodes.lost]
kind = "say"
prompt = "Lost."
next = "void"
"""
    )
    assert [str(p) for p in problems(f, QUEUES)] == [
        "flow line, node s: queue: unknown queue 'sales' (configured: support, billing)",
        "flow line, node lost: next: names the node 'void', which does not exist",
        "flow line, node lost: unreachable from the start node 's'",
    ]


def test_two_files_with_one_flow_name_are_refused(tmp_path: Path) -> None:
    text = '[flow]\nname = "dup"\nstart = "s"\nlanguage = "en"\ntimezone = "UTC"\n'
    text += '[nodes.s]\nkind = "hangup"\n'
    (tmp_path / "a.toml").write_text(text)
    (tmp_path / "b.toml").write_text(text)

    with pytest.raises(FlowError, match=r"flow dup: defined twice \(.*a\.toml and .*b\.toml\)"):
        load_flows([tmp_path / "a.toml", tmp_path / "b.toml"], QUEUES)
