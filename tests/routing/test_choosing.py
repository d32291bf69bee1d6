"""Which agent gets a task (strategies) and which task an agent gets
(priority, aging, age, matching)."""

from __future__ import annotations

from routing.model import (
    AgentConfig,
    QueueConfig,
    ReservationOffered,
    TaskAssigned,
    TaskSpec,
    TaskState,
)
from tests.routing.helpers import T0, Desk, of, one


def assigned_to(events: list) -> str:  # type: ignore[type-arg]
    return one(events, TaskAssigned).agent_id


def test_longest_idle_gives_the_task_to_the_agent_whose_last_task_ended_first() -> None:
    d = Desk(QueueConfig("q", "true", strategy="longest_idle"))
    for name in ("ann", "bob", "cid"):
        d.agent(name, auto_accept=True)
        d.submit(f"warm-{name}", "q")
    for name, at in (("bob", 5), ("cid", 10), ("ann", 20)):
        d.clock.advance(at - (d.now - T0))
        d.do("complete", f"warm-{name}")
    assert assigned_to(d.submit("t1", "q")) == "bob"
    assert assigned_to(d.submit("t2", "q")) == "cid"
    assert assigned_to(d.submit("t3", "q")) == "ann"


def test_longest_idle_counts_sign_in_time_for_agents_without_a_task_yet() -> None:
    d = Desk(QueueConfig("q", "true"))
    d.agent("ann", auto_accept=True)
    d.clock.advance(1)
    d.agent("bob", auto_accept=True)
    d.do("set_agent_state", "ann", "offline")
    d.clock.advance(1)
    d.do("set_agent_state", "ann", "available")  # signed in again: now the newest
    assert assigned_to(d.submit("t1", "q")) == "bob"


def test_least_occupied_gives_the_task_to_the_agent_with_the_lightest_load() -> None:
    d = Desk(QueueConfig("mail", "true", strategy="least_occupied"))
    d.agent("ann", capacity={"email": 3}, auto_accept=True)
    d.clock.advance(1)
    d.agent("bob", capacity={"email": 3}, auto_accept=True)
    got = [assigned_to(d.submit(f"m{n}", "mail", "email")) for n in range(6)]
    # ties (same load) go to the longest idle: ann signed in first
    assert got == ["ann", "bob", "ann", "bob", "ann", "bob"]
    d.do("complete", "m2")  # ann 2/3, bob 3/3
    assert assigned_to(d.submit("m6", "mail", "email")) == "ann"


def test_least_occupied_counts_load_against_total_capacity() -> None:
    d = Desk(QueueConfig("mail", "true", strategy="least_occupied"))
    d.agent("ann", capacity={"email": 4}, auto_accept=True)
    d.clock.advance(1)
    d.agent("bob", capacity={"email": 2}, auto_accept=True)
    assert assigned_to(d.submit("m1", "mail", "email")) == "ann"  # both empty: longest idle
    assert assigned_to(d.submit("m2", "mail", "email")) == "bob"  # ann 1/4 > bob 0/2
    assert assigned_to(d.submit("m3", "mail", "email")) == "ann"  # ann 1/4 < bob 1/2


def test_best_skill_gives_the_task_to_the_highest_level() -> None:
    d = Desk(
        QueueConfig(
            "billing",
            "agent.skills.billing >= 3",
            strategy="best_skill",
            strategy_skill="billing",
        )
    )
    d.agent("ann", skills={"billing": 4}, auto_accept=True)
    d.agent("bob", skills={"billing": 9}, auto_accept=True)
    d.agent("cid", skills={"billing": 7}, auto_accept=True)
    assert [assigned_to(d.submit(f"t{n}", "billing")) for n in range(3)] == ["bob", "cid", "ann"]


def test_an_agent_takes_the_highest_priority_task_first_then_the_oldest() -> None:
    d = Desk(QueueConfig("q", "true"))
    d.submit("old-low", "q", priority=0)
    d.clock.advance(1)
    d.submit("new-high", "q", priority=5)
    d.clock.advance(1)
    d.submit("newer-low", "q", priority=0)
    d.agent("ann", auto_accept=True)
    assert one(d.log, TaskAssigned).task_id == "new-high"
    assert [t.id for t in d.router.tasks_in("q")] == ["old-low", "newer-low"]


def test_aging_lets_a_long_waiting_task_overtake_a_higher_priority_newcomer() -> None:
    def first_taken(aging: float) -> str:
        d = Desk(QueueConfig("q", "true", aging_per_second=aging))
        d.submit("low", "q", priority=0)
        d.clock.advance(60)
        d.submit("high", "q", priority=5)
        d.agent("ann", auto_accept=True)
        return one(d.log, TaskAssigned).task_id

    assert first_taken(0.0) == "high"
    assert first_taken(0.1) == "low"  # 0 + 0.1 * 60 = 6 > 5


def test_aging_prevents_starvation_under_a_stream_of_high_priority_tasks() -> None:
    d = Desk(QueueConfig("q", "true", aging_per_second=1.0, wrap_up_seconds=0))
    d.agent("ann", auto_accept=True)
    d.submit("busy", "q")
    d.submit("low", "q", priority=0)
    served = []
    for n in range(30):
        d.clock.advance(1)
        d.submit(f"high{n}", "q", priority=10)
        current = d.router.agent("ann").task_ids[0]
        served.append(one(d.do("complete", current), TaskAssigned).task_id)
    assert "low" in served
    assert served.index("low") <= 11


def test_an_agent_in_several_queues_takes_the_best_task_across_them() -> None:
    d = Desk(
        QueueConfig("a", '"a" in agent.skills', aging_per_second=0.0),
        QueueConfig("b", '"b" in agent.skills', aging_per_second=1.0),
    )
    d.submit("a1", "a", priority=3)
    d.submit("b1", "b", priority=0)
    d.clock.advance(5)  # b1 is now at 0 + 1.0 * 5 = 5 > 3
    d.agent("ann", skills={"a": 1, "b": 1}, auto_accept=True)
    assert one(d.log, TaskAssigned).task_id == "b1"


def test_language_join_routes_to_a_speaker_even_if_others_idle_longer() -> None:
    d = Desk(QueueConfig("q", "task.language in agent.languages"))
    d.agent("en1", languages=frozenset({"en"}), auto_accept=True)
    d.agent("en2", languages=frozenset({"en"}), auto_accept=True)
    d.clock.advance(1)
    d.agent("es1", languages=frozenset({"es", "en"}), auto_accept=True)
    assert assigned_to(d.submit("t1", "q", language="es")) == "es1"
    assert assigned_to(d.submit("t2", "q", language="en")) == "en1"
    events = d.submit("t3", "q", language="fr")
    assert of(events, TaskAssigned) == []
    events = d.submit("t4", "q")  # no language: absent never matches
    assert of(events, TaskAssigned) == []
    assert [t.id for t in d.router.tasks_in("q")] == ["t3", "t4"]


def test_attributes_collected_by_the_ivr_drive_matching() -> None:
    d = Desk(
        QueueConfig(
            "q",
            "agent.skills.support >= 3 and (task.attributes.vip == false or "
            "agent.skills.support >= 8)",
        )
    )
    d.agent("junior", skills={"support": 4}, auto_accept=True)
    events = d.submit("vip", "q", attributes={"vip": True})
    assert of(events, TaskAssigned) == []
    assert assigned_to(d.submit("normal", "q", attributes={"vip": False})) == "junior"
    assert (
        of(d.agent("senior", skills={"support": 9}, auto_accept=True), TaskAssigned)[0].task_id
        == "vip"
    )


def test_a_junior_agent_skips_tasks_it_cannot_take_and_gets_the_next_one() -> None:
    d = Desk(QueueConfig("q", "agent.skills.support >= task.attributes.min_level"))
    d.submit("hard1", "q", attributes={"min_level": 8}, priority=5)
    d.submit("hard2", "q", attributes={"min_level": 9}, priority=5)
    d.submit("easy", "q", attributes={"min_level": 2})
    d.agent("junior", skills={"support": 4}, auto_accept=True)
    assert one(d.log, TaskAssigned).task_id == "easy"


def test_required_skills_are_a_hard_filter_on_top_of_the_target() -> None:
    d = Desk(QueueConfig("q", "true"))
    d.agent("ann", skills={"billing": 3}, auto_accept=True)
    d.clock.advance(1)
    d.agent("bob", skills={"billing": 6, "premium": 2}, auto_accept=True)
    assert assigned_to(d.submit("t1", "q", required_skills={"billing": 5})) == "bob"
    events = d.submit("t2", "q", required_skills={"premium": 3})
    assert of(events, TaskAssigned) == []
    assert d.router.task("t2").state is TaskState.WAITING


def test_rejected_agent_is_skipped_for_that_task_only() -> None:
    d = Desk(QueueConfig("q", "true"))
    d.agent("ann")
    d.submit("t1", "q")
    d.submit("t2", "q")
    events = d.do("reject", "r-1")
    # ann is free again: t1 cannot come back to her, t2 can
    assert one(events, ReservationOffered).task_id == "t2"
    d.do("accept", "r-2")
    d.router.add_agent(AgentConfig("bob"), d.now)
    assert one(d.do("set_agent_state", "bob", "available"), ReservationOffered).task_id == "t1"


def test_arrival_order_survives_widening_and_requeueing() -> None:
    d = Desk(QueueConfig("q", "agent.skills.x >= 5", steps=()))
    d.submit("first", "q")
    d.clock.advance(1)
    d.submit("second", "q")
    d.router.add_agent(AgentConfig("ann", skills={"x": 5}), d.now)
    d.router.set_agent_state("ann", "available", d.now)
    d.router.reject("r-1", d.now)  # "first" goes back, excluded for ann; ann gets "second"
    assert d.router.task("second").state is TaskState.RESERVED
    assert [t.id for t in d.router.tasks_in("q")] == ["first", "second"]
    assert d.router.submit(TaskSpec("third", "q", "voice"), d.now)
